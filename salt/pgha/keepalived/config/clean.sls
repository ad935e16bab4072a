# -*- coding: utf-8 -*-
# vim: ft=sls
{%- from "pgha/map.jinja" import pgha %}

include:
  - pgha.keepalived.service.clean

pgha-keepalived-config-clean-file-absent:
  file.absent:
    - name: {{ pgha.keepalived.config_file }}
    - require:
      - sls: pgha.keepalived.service.clean
