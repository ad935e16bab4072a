# -*- coding: utf-8 -*-
# vim: ft=sls
# Patroni 4: runs PostgreSQL, holds the leader lock in etcd, serves the REST API on 8008.
include:
  - pgha.patroni.package.install
  - pgha.patroni.config.file
  # Patroni's on_role_change callback (the etcd leader watch) needs the postgres user.
  - pgha.etcd.leader_watch
  - pgha.patroni.service.running
  - pgha.patroni.config.dynamic
