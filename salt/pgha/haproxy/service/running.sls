# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set pgha = salt["pgha.config"](redact=False) %}

include:
  - pgha.haproxy.config.file

# Reloaded, never restarted, on change: Debian's unit runs HAProxy in master-worker mode
# and the stats socket passes the listeners on (expose-fd), so a reload drops no session.
pgha-haproxy-service-running-service-running:
  service.running:
    - name: {{ pgha.haproxy.service }}
    - enable: True
    - reload: True
    - require:
      - sls: pgha.haproxy.config.file
    - watch:
      - file: pgha-haproxy-config-file-file-managed
{%- if pgha.tls.enabled %}
      - file: pgha-tls-pem-file-managed
{%- endif %}
