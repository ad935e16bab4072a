# -*- coding: utf-8 -*-
# vim: ft=sls
# The postgres nodes' secrets (and the master's, for its orchestrations): PostgreSQL's
# roles, Patroni's REST API, etcd's users. pillar/top.sls gives them to no other minion.
#
# Lab secrets are in clear text here because the lab is disposable and unreachable from
# outside the host. In production keep them encrypted (see pillar.example: gpg).
pgha:
  patroni:
    restapi:
      password: lab-rest-3f9c1a
    superuser:
      password: lab-super-8d2e47
    replication:
      password: lab-repl-5b7c90
    rewind:
      password: lab-rewind-1a6f33
  etcd:
    root_password: lab-etcd-root-c41d0e
    patroni_password: lab-etcd-patroni-93ab27
  monitoring:
    # postgres_exporter's login role (pg_monitor only).
    postgres_exporter:
      password: lab-monitor-2e8b51
