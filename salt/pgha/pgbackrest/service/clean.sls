# -*- coding: utf-8 -*-
# vim: ft=sls
{%- from "pgha/map.jinja" import pgha %}

pgha-pgbackrest-service-clean-service-dead:
  service.dead:
    - name: {{ pgha.backup.service }}
    - enable: False
