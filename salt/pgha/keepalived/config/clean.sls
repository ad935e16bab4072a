# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set pgha = salt["pgha.config"](redact=False) %}

include:
  - pgha.keepalived.service.clean

pgha-keepalived-config-clean-file-absent:
  file.absent:
    - name: {{ pgha.keepalived.config_file }}
    - require:
      - sls: pgha.keepalived.service.clean
