# -*- coding: utf-8 -*-
# vim: ft=sls
include:
  - pgha.monitoring.server.clean
  - pgha.monitoring.exporters.clean
