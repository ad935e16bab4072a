# -*- coding: utf-8 -*-
# vim: ft=sls
# Reaction to `salt/beacon/<minion>/pgha_patroni/role_changed` on the member that became
# leader (Patroni decided; nothing here promotes). Announces the change, checks that
# every HAProxy sends writes to the new leader, re-converges the front end, and moves
# etcd's leader off the new primary's node.
{%- from "pgha/map.jinja" import pgha %}
{%- set ev = salt["pillar.get"]("event_data", {}) %}
{%- set new = ev.get("new_leader") or ev.get("member", "") %}
{%- set old = ev.get("old_leader") or "unknown" %}
{%- if pgha.heal.enabled and pgha.heal.role_change and new in pgha.postgres_members %}
{%-   set about = {"old_leader": old, "new_leader": new, "timeline": ev.get("timeline")} %}

pgha-heal-role-alert:
  salt.runner:
    - name: event.send
    - tag: pgha/alert/leader_changed
    - data: {{ about | json }}

pgha-heal-role-budget:
  pgha.remediation_allowed:
    - name: role_change/{{ pgha.cluster.name }}
    - max_attempts: {{ pgha.heal.max_attempts * 2 }}
    - window: {{ pgha.heal.window }}

{%-   if pgha.haproxy_members %}
pgha-heal-role-routing:
  salt.state:
    - tgt: {{ pgha.haproxy_members | join(",") }}
    # Wait for a state run already going on that minion (an operator's highstate).
    - queue: True
    - tgt_type: list
    - sls: [pgha.check.routing]
    - require:
      - pgha: pgha-heal-role-budget

{%-     if pgha.frontend == "keepalived" %}
pgha-heal-role-frontend:
  salt.state:
    - tgt: {{ pgha.haproxy_members | join(",") }}
    - queue: True
    - tgt_type: list
    - sls: [pgha.keepalived]
    - require:
      - pgha: pgha-heal-role-budget
{%-     endif %}
{%-   endif %}

pgha-heal-role-etcd-leader:
  salt.state:
    - tgt: 'roles:postgres'
    - queue: True
    - tgt_type: grain
    - subset: 1
    - sls: [pgha.etcd.leader]
    - require:
      - pgha: pgha-heal-role-budget

pgha-heal-role-done:
  salt.runner:
    - name: event.send
    - tag: pgha/remediation/role_change/{{ new }}
    - data: {{ dict(about, result="writes routed to the new leader") | json }}
    - require:
      - pgha: pgha-heal-role-budget
{%-   if pgha.haproxy_members %}
      - salt: pgha-heal-role-routing
{%-   endif %}

{%-   if pgha.haproxy_members %}
pgha-heal-role-routing-failed:
  salt.runner:
    - name: event.send
    - tag: pgha/alert/routing
    - data: {{ dict(about, result="an HAProxy does not send writes to the new leader") | json }}
    # Only when an attempt was made: a refused one is not a routing failure.
    - require:
      - pgha: pgha-heal-role-budget
    - onfail:
      - salt: pgha-heal-role-routing
{%-   endif %}
{%- else %}
pgha-heal-role-nothing-to-do:
  test.nop:
    - name: "no reaction for new leader {{ new }}"
{%- endif %}
