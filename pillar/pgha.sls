# -*- coding: utf-8 -*-
# vim: ft=sls
# The lab's cluster: three database nodes, two HAProxy nodes, a VRRP VIP.
# Every key and its default is documented in pillar.example.
#
# Lab secrets are in clear text here because the lab is disposable and unreachable
# from outside the host. In production keep them encrypted (see pillar.example: gpg).
pgha:
  cluster:
    name: pgha
    network: 198.51.100.0/24

  nodes:
    pg-01:
      address: 198.51.100.120
      roles: [postgres]
    pg-02:
      address: 198.51.100.121
      roles: [postgres]
    pg-03:
      address: 198.51.100.122
      roles: [postgres]
    haproxy-01:
      address: 198.51.100.11
      roles: [haproxy]
      priority: 150
    haproxy-02:
      address: 198.51.100.12
      roles: [haproxy]
      priority: 100

  postgres:
    # The host (the tests and `psql` on it) is the lab's application network.
    app_networks:
      - 198.51.100.1/32
    package_versions:
      postgresql-17: 17.12-0+deb13u1
      postgresql-client-17: 17.12-0+deb13u1

  patroni:
    package_versions:
      patroni: 4.0.7-3~deb13u1
      python3-etcd: 0.4.5-6
    restapi:
      password: lab-rest-3f9c1a
    superuser:
      password: lab-super-8d2e47
    replication:
      password: lab-repl-5b7c90
    rewind:
      password: lab-rewind-1a6f33

  etcd:
    package_versions:
      etcd-server: 3.5.16-4
      etcd-client: 3.5.16-4
    auth: true
    root_password: lab-etcd-root-c41d0e
    patroni_password: lab-etcd-patroni-93ab27

  haproxy:
    package_versions:
      haproxy: 3.0.11-1+deb13u4
    stats:
      password: lab-stats-77e0b2

  frontend: keepalived

  keepalived:
    vip: 198.51.100.10
    package_versions:
      keepalived: "1:2.3.3-1"
