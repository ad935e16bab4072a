# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set pgha = salt["pgha.config"](redact=False) %}

pgha-patroni-service-clean-service-dead:
  service.dead:
    - name: {{ pgha.patroni.service }}
    - enable: False
