# -*- coding: utf-8 -*-
# vim: ft=sls
# Reverse order of init: stop, remove config (data only if pgha:clean:remove_data), remove packages.
include:
  - pgha.etcd.service.clean
  - pgha.etcd.config.clean
  - pgha.etcd.package.clean
