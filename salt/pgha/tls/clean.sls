# -*- coding: utf-8 -*-
# vim: ft=sls
{%- from "pgha/map.jinja" import pgha %}

pgha-tls-clean-dir-absent:
  file.absent:
    - name: {{ salt["file.dirname"](pgha.tls.key_file) }}
