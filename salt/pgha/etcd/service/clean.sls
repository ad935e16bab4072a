# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set pgha = salt["pgha.config"](redact=False) %}

pgha-etcd-service-clean-service-dead:
  service.dead:
    - name: {{ pgha.etcd.service }}
    - enable: False
