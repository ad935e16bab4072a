# -*- coding: utf-8 -*-
# vim: ft=sls
include:
  - pgha.keepalived.service.clean
  - pgha.keepalived.config.clean
  - pgha.keepalived.package.clean
