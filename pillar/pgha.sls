# -*- coding: utf-8 -*-
# vim: ft=sls
# The lab's cluster: three database nodes, two HAProxy nodes, a VRRP VIP.
# Every key and its default is documented in pillar.example.
#
# No secret lives here: this file goes to every minion. The secrets are in
# pgha_secrets/, and pillar/top.sls gives each minion only its role's.
pgha:
  # The network, the nodes, the VIP, the application network and the wheelhouse come
  # from lab/pgha_lab/topology.py: pgha-lab writes them as lab_topology.sls.
  # The failover timing at Patroni's floor (ttl 20, loop_wait 10) with 250 ms HAProxy
  # checks, and zero data loss (synchronous replication): salt/pgha/profiles.yaml.
  profile:
    rto: fast
    rpo: zero

  cluster:
    name: pgha

  postgres:
    package_versions:
      postgresql-17: 17.12-0+deb13u1
      postgresql-client-17: 17.12-0+deb13u1

  patroni:
    # pip (the default) installs Patroni 4.1 from the wheelhouse pgha-lab serves on the
    # bridge (the nodes have no route out); deb, Debian's 4.0.7, at these versions.
    package_versions:
      patroni: 4.0.7-3~deb13u1
      python3-etcd: 0.4.5-6

  etcd:
    package_versions:
      etcd-server: 3.5.16-4
      etcd-client: 3.5.16-4
    auth: true
    # The host's own tools (tests, fault injection) use the lab CA's lab-host certificate.

  haproxy:
    package_versions:
      haproxy: 3.0.11-1+deb13u4

  frontend: keepalived

  backup:
    enabled: true
    package_versions:
      pgbackrest: 2.55.1-1

  heal:
    # Shorter than the defaults so the lab's self-healing tests wait less.
    not_streaming_grace: 30
    reinit_grace: 15
    repeat: 15

  keepalived:
    package_versions:
      keepalived: "1:2.3.3-1"
