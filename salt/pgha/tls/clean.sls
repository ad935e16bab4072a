# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set pgha = salt["pgha.config"](redact=False) %}

pgha-tls-clean-dir-absent:
  file.absent:
    - name: {{ salt["file.dirname"](pgha.tls.key_file) }}
