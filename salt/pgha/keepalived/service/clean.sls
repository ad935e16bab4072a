# -*- coding: utf-8 -*-
# vim: ft=sls
{%- from "pgha/map.jinja" import pgha %}

pgha-keepalived-service-clean-service-dead:
  service.dead:
    - name: {{ pgha.keepalived.service }}
    - enable: False
