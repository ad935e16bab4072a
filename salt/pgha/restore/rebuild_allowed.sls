# -*- coding: utf-8 -*-
# vim: ft=sls
# orch.rebuild's first step, on the backup node: the confirmation, and a backup young
# enough (pgha:backup:rebuild_requires_backup_within) unless allow_without_backup.
{%- set pgha = salt["pgha.config"](redact=False) %}
{%- set run = salt["pillar.get"]("pgha_run", {}) %}

pgha-restore-rebuild-allowed:
  pgbackrest.rebuild_allowed:
    - name: {{ pgha.backup_stanza | json }}
    - confirm: {{ run.get("confirm") | json }}
    - allow_without_backup: {{ (run.get("allow_without_backup") is sameas true) | json }}
