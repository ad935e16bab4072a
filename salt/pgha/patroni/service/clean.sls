# -*- coding: utf-8 -*-
# vim: ft=sls
{%- from "pgha/map.jinja" import pgha %}

pgha-patroni-service-clean-service-dead:
  service.dead:
    - name: {{ pgha.patroni.service }}
    - enable: False
