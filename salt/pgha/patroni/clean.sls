# -*- coding: utf-8 -*-
# vim: ft=sls
include:
  - pgha.etcd.leader_watch.clean
  - pgha.patroni.service.clean
  - pgha.patroni.config.clean
  - pgha.patroni.package.clean
