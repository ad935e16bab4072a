# -*- coding: utf-8 -*-
# vim: ft=sls
{%- from "pgha/map.jinja" import pgha %}

pgha-etcd-service-clean-service-dead:
  service.dead:
    - name: {{ pgha.etcd.service }}
    - enable: False
