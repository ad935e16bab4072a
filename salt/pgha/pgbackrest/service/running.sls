# -*- coding: utf-8 -*-
# vim: ft=sls
# Debian's pgbackrest.service runs `pgbackrest server` as postgres. It re-reads its
# configuration and certificates on SIGHUP (the unit's reload), so a change drops no
# backup or archive-push in flight.
{%- set pgha = salt["pgha.config"](redact=False) %}
{%- if pgha.backup_ready %}

include:
  - pgha.pgbackrest.config.file

pgha-pgbackrest-service-running-service-running:
  service.running:
    - name: {{ pgha.backup.service }}
    - enable: True
    - reload: True
    - require:
      - sls: pgha.pgbackrest.config.file
    - watch:
      - file: pgha-pgbackrest-config-file-managed
      - file: pgha-pgbackrest-config-file-tls-cert-managed
      - file: pgha-pgbackrest-config-file-tls-key-managed
{%- endif %}
