# -*- coding: utf-8 -*-
# vim: ft=sls
{%- from "pgha/map.jinja" import pgha %}

include:
  - pgha.haproxy.service.clean

pgha-haproxy-config-clean-file-absent:
  file.absent:
    - name: {{ pgha.haproxy.config_file }}
    - require:
      - sls: pgha.haproxy.service.clean
