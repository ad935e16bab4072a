# -*- coding: utf-8 -*-
# vim: ft=sls
# This member's data directory out of the way before the cluster is bootstrapped again.
# orch.restore moves it aside (<data_dir>.pre-restore-<stamp>): it may be the last copy
# of what came after the target. orch.rebuild (confirmed, with a backup) deletes it.
{%- set pgha = salt["pgha.config"](redact=False) %}
{%- set run = salt["pillar.get"]("pgha_run", {}) %}
{%- set data = pgha.postgres.data_dir %}
{%- if run.get("wipe") is sameas true %}

pgha-restore-data-wiped:
  file.absent:
    - name: {{ data | json }}
{%- else %}
{%-   set stamp = run.get("stamp") | string %}
{%-   if not stamp.isdigit() %}
pgha-restore-data-stamp:
  test.fail_without_changes:
    - comment: "pgha.restore.aside needs pgha_run:stamp (digits), from orch.restore"
{%-   else %}

pgha-restore-data-moved-aside:
  cmd.run:
    - name: {{ ("mv " ~ data ~ " " ~ data ~ ".pre-restore-" ~ stamp) | json }}
    - onlyif: {{ ("test -d " ~ data) | json }}
{%-   endif %}
{%- endif %}
