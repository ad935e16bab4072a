# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set pgha = salt["pgha.config"](redact=False) %}

include:
  - pgha.haproxy.service.clean

pgha-haproxy-config-clean-file-absent:
  file.absent:
    - name: {{ pgha.haproxy.config_file }}
    - require:
      - sls: pgha.haproxy.service.clean
