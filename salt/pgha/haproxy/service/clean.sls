# -*- coding: utf-8 -*-
# vim: ft=sls
{%- from "pgha/map.jinja" import pgha %}

pgha-haproxy-service-clean-service-dead:
  service.dead:
    - name: {{ pgha.haproxy.service }}
    - enable: False
