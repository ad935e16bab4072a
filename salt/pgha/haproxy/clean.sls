# -*- coding: utf-8 -*-
# vim: ft=sls
include:
  - pgha.haproxy.service.clean
  - pgha.haproxy.config.clean
  - pgha.haproxy.package.clean
