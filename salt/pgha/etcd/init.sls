# -*- coding: utf-8 -*-
# vim: ft=sls
# etcd 3.5 (Debian's etcd-server): the Raft DCS for Patroni, one member per postgres node.
include:
  - pgha.etcd.package.install
  - pgha.etcd.config.file
  - pgha.etcd.service.running
