# -*- coding: utf-8 -*-
# vim: ft=sls
# Reaction to `salt/beacon/<minion>/pgha_patroni/state` for a replica: it failed to
# start, crashed, or runs without streaming (a diverged timeline pg_rewind could not fix).
# Patroni rebuilds it from the leader (reinit); the leader is never touched.
{%- from "pgha/map.jinja" import pgha %}
{%- set ev = salt["pillar.get"]("event_data", {}) %}
{%- set member = ev.get("member", "") %}
{%- if pgha.heal.enabled and pgha.heal.reinit and member in pgha.postgres_members and ev.get("role") == "replica" %}
{%-   set about = {"member": member, "state": ev.get("state"), "action": "patroni.reinit"} %}

pgha-heal-replica-budget:
  pgha.remediation_allowed:
    - name: reinit/{{ member }}
    - max_attempts: {{ pgha.heal.max_attempts }}
    - window: {{ pgha.heal.window }}

pgha-heal-replica-reinit:
  salt.state:
    - tgt: 'roles:postgres'
    # Wait for a state run already going on that minion (an operator's highstate).
    - queue: True
    - tgt_type: grain
    - subset: 1
    - sls: [pgha.reinit]
    - pillar:
        pgha_run: {member: {{ member }}}
    - require:
      - pgha: pgha-heal-replica-budget

pgha-heal-replica-done:
  salt.runner:
    - name: event.send
    - tag: pgha/remediation/reinit/{{ member }}
    - data: {{ dict(about, result="streaming") | json }}
    - require:
      - salt: pgha-heal-replica-reinit

pgha-heal-replica-failed:
  salt.runner:
    - name: event.send
    - tag: pgha/alert/reinit_failed
    - data: {{ dict(about, result="failed") | json }}
    # Only when an attempt was made: a refused one is reported as remediation_limit.
    - require:
      - pgha: pgha-heal-replica-budget
    - onfail:
      - salt: pgha-heal-replica-reinit

pgha-heal-replica-limit:
  salt.runner:
    - name: event.send
    - tag: pgha/alert/remediation_limit
    - data: {{ dict(about, kind="reinit", max_attempts=pgha.heal.max_attempts, window=pgha.heal.window) | json }}
    - onfail:
      - pgha: pgha-heal-replica-budget
{%- else %}
pgha-heal-replica-nothing-to-do:
  test.nop:
    - name: "no reaction for member={{ member }} role={{ ev.get('role') }}"
{%- endif %}
