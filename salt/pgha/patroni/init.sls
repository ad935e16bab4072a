# -*- coding: utf-8 -*-
# vim: ft=sls
# Patroni 4: runs PostgreSQL, holds the leader lock in etcd, serves the REST API on 8008.
include:
  - pgha.patroni.package.install
  - pgha.patroni.config.file
  - pgha.patroni.service.running
  - pgha.patroni.config.dynamic
