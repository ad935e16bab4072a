# -*- coding: utf-8 -*-
# vim: ft=sls
# Reaction to `salt/beacon/<minion>/pgha_etcd/unhealthy`: the member runs but is not
# healthy. Restart it; if it does not come back healthy, alert. Its data is never wiped
# automatically (a member that cannot rejoin needs a person: orch.remove_node/add_node).
{%- from "pgha/map.jinja" import pgha %}
{%- set ev = salt["pillar.get"]("event_data", {}) %}
{%- set member = ev.get("member", "") %}
{%- if pgha.heal.enabled and pgha.heal.etcd and member in pgha.postgres_members %}
{%-   set about = {"member": member, "reason": ev.get("reason"), "action": "restart etcd"} %}

pgha-heal-etcd-budget:
  pgha.remediation_allowed:
    - name: etcd/{{ member }}
    - max_attempts: {{ pgha.heal.max_attempts }}
    - window: {{ pgha.heal.window }}

pgha-heal-etcd-restart:
  salt.function:
    - name: service.restart
    - tgt: {{ member }}
    - arg: [{{ pgha.etcd.service }}]
    - require:
      - pgha: pgha-heal-etcd-budget

pgha-heal-etcd-healthy:
  salt.state:
    - tgt: {{ member }}
    # Wait for a state run already going on that minion (an operator's highstate).
    - queue: True
    - sls: [pgha.check.etcd_member]
    - require:
      - salt: pgha-heal-etcd-restart

pgha-heal-etcd-done:
  salt.runner:
    - name: event.send
    - tag: pgha/remediation/etcd/{{ member }}
    - data: {{ dict(about, result="healthy") | json }}
    - require:
      - salt: pgha-heal-etcd-healthy

pgha-heal-etcd-cannot-rejoin:
  salt.runner:
    - name: event.send
    - tag: pgha/alert/etcd_member
    - data: {{ dict(about, result="still unhealthy after a restart; data left untouched") | json }}
    # Only when an attempt was made: a refused one is reported as remediation_limit.
    - require:
      - pgha: pgha-heal-etcd-budget
    - onfail:
      - salt: pgha-heal-etcd-restart
      - salt: pgha-heal-etcd-healthy

pgha-heal-etcd-limit:
  salt.runner:
    - name: event.send
    - tag: pgha/alert/remediation_limit
    - data: {{ dict(about, kind="etcd", max_attempts=pgha.heal.max_attempts, window=pgha.heal.window) | json }}
    - onfail:
      - pgha: pgha-heal-etcd-budget
{%- else %}
pgha-heal-etcd-nothing-to-do:
  test.nop:
    - name: "no reaction for member={{ member }}"
{%- endif %}
