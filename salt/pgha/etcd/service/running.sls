# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set pgha = salt["pgha.config"](redact=False) %}

include:
  - pgha.etcd.config.file

pgha-etcd-service-running-service-running:
  service.running:
    - name: {{ pgha.etcd.service }}
    - enable: True
    - require:
      - sls: pgha.etcd.config.file
    - watch:
      - file: pgha-etcd-config-file-env-managed
      - file: pgha-etcd-config-file-unit-dropin-managed
