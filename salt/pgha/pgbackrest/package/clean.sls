# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set pgha = salt["pgha.config"](redact=False) %}

include:
  - pgha.pgbackrest.config.clean

pgha-pgbackrest-package-clean-pkg-removed:
  pkg.removed:
    - pkgs: {{ pgha.backup.packages | json }}
    - require:
      - sls: pgha.pgbackrest.config.clean
