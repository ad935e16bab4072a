# -*- coding: utf-8 -*-
# vim: ft=sls
# Before orch.restore stops the cluster: the primary's current WAL goes to the archive,
# so that a target up to now can be reached. A cluster already down is no failure.
{%- set pgha = salt["pgha.config"](redact=False) %}

pgha-restore-wal-archived:
  pgbackrest.wal_archived:
    - name: {{ pgha.backup_stanza | json }}
    - required: False
