# -*- coding: utf-8 -*-
# vim: ft=sls
# orch.restore's first step, on the backup node: the confirmation, the target, the
# repository (with the pillar's passphrase) and a backup older than the target.
# Changes nothing.
{%- set pgha = salt["pgha.config"](redact=False) %}
{%- set run = salt["pillar.get"]("pgha_run", {}) %}

pgha-restore-possible:
  pgbackrest.restorable:
    - name: {{ pgha.backup_stanza | json }}
    - confirm: {{ run.get("confirm") | json }}
{%- for key in ["target_time", "target_lsn", "target_name", "target_timeline"] %}
    - {{ key }}: {{ run.get(key) | json }}
{%- endfor %}
