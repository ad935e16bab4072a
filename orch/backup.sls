# -*- coding: utf-8 -*-
# vim: ft=sls
#
# salt-run state.orchestrate orch.backup [pillar='{"type": "full"}']   (full, diff, incr)
#
# One backup now, from the backup node (pgBackRest finds the primary itself, or copies
# from a standby with pgha:backup:backup_standby), then expire by retention and verify
# the repository. The same as a scheduled run of pgha-backup@<type>.service. It takes no
# maintenance lock: a backup never changes the cluster, and healing may go on meanwhile.
{%- from "pgha/map.jinja" import pgha %}
{%- set kind = salt["pillar.get"]("type", "full") %}

pgha-orch-backup-validate:
  pgha.validated:
    - name: pgha
    - failhard: True

{%- if not pgha.backup_ready %}
pgha-orch-backup-enabled:
  test.fail_without_changes:
    - comment: "backups are off: set pgha:backup:enabled and give one node roles: [backup]"
    - failhard: True
{%- elif kind not in ["full", "diff", "incr"] %}
pgha-orch-backup-type:
  test.fail_without_changes:
    - comment: {{ ("backup type " ~ kind ~ " is not one of full, diff, incr") | json }}
    - failhard: True
{%- else %}

pgha-orch-backup-taken:
  salt.function:
    - name: pgbackrest.backup
    - tgt: {{ pgha.backup_node | json }}
    - kwarg:
        type: {{ kind | json }}
    - timeout: 7200
    - require:
      - pgha: pgha-orch-backup-validate

pgha-orch-backup-expired:
  salt.function:
    - name: pgbackrest.expire
    - tgt: {{ pgha.backup_node | json }}
    - require:
      - salt: pgha-orch-backup-taken

pgha-orch-backup-verified:
  salt.function:
    - name: pgbackrest.verify
    - tgt: {{ pgha.backup_node | json }}
    - timeout: 3600
    - require:
      - salt: pgha-orch-backup-expired
{%- endif %}
