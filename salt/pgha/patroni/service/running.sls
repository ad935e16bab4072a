# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set pgha = salt["pgha.config"](redact=False) %}

include:
  - pgha.patroni.config.file

# A changed config is applied with a reload (SIGHUP): Patroni re-reads it without
# restarting PostgreSQL. Parameters that need a restart show as pending_restart, for
# orch.rolling_restart.
pgha-patroni-service-running-service-running:
  service.running:
    - name: {{ pgha.patroni.service }}
    - enable: True
    - reload: True
    - require:
      - sls: pgha.patroni.config.file
    - watch:
      - file: pgha-patroni-config-file-file-managed
{%- if pgha.tls.enabled %}
      - file: pgha-tls-cert-file-managed
      - file: pgha-tls-key-file-managed
{%- endif %}
