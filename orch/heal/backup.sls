# -*- coding: utf-8 -*-
# vim: ft=sls
# Reaction to `salt/beacon/<minion>/pgha_backup/{stale,archive_failing}`: an alert,
# pgha/alert/backup, naming the node and the problem as pgBackRest or PostgreSQL put it.
# Nothing is repaired automatically: a person decides whether to take a backup
# (orch.backup) or to fix the repository.
{%- from "orch/heal/gate.jinja" import not_acting %}
{%- set tag = salt["pillar.get"]("event_tag", "") %}
{%- set ev = salt["pillar.get"]("event_data", {}) %}
{%- set gate = salt["pgha_event.gate"](tag, ev, "backup") %}
{%- set kind = tag.split("/")[-1] %}
{%- if not gate.act %}
{{ not_acting(gate, tag, "backup") }}
{%- elif kind not in ["stale", "archive_failing"] %}
pgha-heal-backup-unknown:
  test.nop:
    - name: {{ ("no reaction to " ~ kind) | json }}
{%- else %}

pgha-heal-backup-alert:
  salt.runner:
    - name: event.send
    - tag: pgha/alert/backup
    - data: {{ {"member": gate.sender, "kind": kind, "problem": ev.get("problem"),
                "wal": ev.get("wal"), "failed_count": ev.get("failed_count")} | json }}
{%- endif %}
