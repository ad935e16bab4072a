# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set pgha = salt["pgha.config"](redact=False) %}

pgha-pgbackrest-service-clean-service-dead:
  service.dead:
    - name: {{ pgha.backup.service }}
    - enable: False
