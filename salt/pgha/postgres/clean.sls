# -*- coding: utf-8 -*-
# vim: ft=sls
include:
  - pgha.postgres.package.clean
