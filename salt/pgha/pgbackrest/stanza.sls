# -*- coding: utf-8 -*-
# vim: ft=sls
# On the backup node, once the cluster has a primary: the stanza exists in the
# repository and `pgbackrest check` passes (a WAL segment reaches the archive).
{%- set pgha = salt["pgha.config"](redact=False) %}
{%- if pgha.backup_ready and pgha.id in pgha.backup_members %}

include:
  - pgha.pgbackrest

pgha-pgbackrest-stanza-present:
  pgbackrest.stanza_present:
    - name: {{ pgha.backup_stanza | json }}
    - require:
      - sls: pgha.pgbackrest
{%- endif %}
