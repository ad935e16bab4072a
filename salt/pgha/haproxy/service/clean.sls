# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set pgha = salt["pgha.config"](redact=False) %}

pgha-haproxy-service-clean-service-dead:
  service.dead:
    - name: {{ pgha.haproxy.service }}
    - enable: False
