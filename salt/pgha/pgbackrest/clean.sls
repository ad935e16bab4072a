# -*- coding: utf-8 -*-
# vim: ft=sls
include:
  - pgha.pgbackrest.package.clean
