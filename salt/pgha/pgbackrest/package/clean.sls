# -*- coding: utf-8 -*-
# vim: ft=sls
{%- from "pgha/map.jinja" import pgha %}

include:
  - pgha.pgbackrest.config.clean

pgha-pgbackrest-package-clean-pkg-removed:
  pkg.removed:
    - pkgs: {{ pgha.backup.packages | json }}
    - require:
      - sls: pgha.pgbackrest.config.clean
