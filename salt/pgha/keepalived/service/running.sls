# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set pgha = salt["pgha.config"](redact=False) %}

include:
  - pgha.keepalived.config.file
  - pgha.haproxy.service.running

# Reload (SIGHUP) on change: the VRRP instance keeps its state, so the VIP does not move.
pgha-keepalived-service-running-service-running:
  service.running:
    - name: {{ pgha.keepalived.service }}
    - enable: True
    - reload: True
    - require:
      - sls: pgha.keepalived.config.file
      - sls: pgha.haproxy.service.running
    - watch:
      - file: pgha-keepalived-config-file-file-managed
