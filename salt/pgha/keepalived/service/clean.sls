# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set pgha = salt["pgha.config"](redact=False) %}

pgha-keepalived-service-clean-service-dead:
  service.dead:
    - name: {{ pgha.keepalived.service }}
    - enable: False
