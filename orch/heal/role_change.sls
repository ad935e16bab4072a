# -*- coding: utf-8 -*-
# vim: ft=sls
# Reaction to `salt/beacon/<minion>/pgha_patroni/role_changed` on the member that became
# leader (Patroni decided; nothing here promotes). Announces the change, checks that
# every HAProxy sends writes to the new leader, re-converges the front end, and moves
# etcd's leader off the new primary's node.
{%- from "pgha/map.jinja" import pgha %}
{%- from "orch/heal/gate.jinja" import not_acting %}
{%- set tag = salt["pillar.get"]("event_tag", "") %}
{%- set ev = salt["pillar.get"]("event_data", {}) %}
{%- set gate = salt["pgha_event.gate"](tag, ev, "role_change") %}
{%- if not gate.act %}
{{ not_acting(gate, tag, "role_change") }}
{%- elif ev.get("new_role") != "leader" %}
pgha-heal-role-not-a-leader:
  test.nop:
    - name: {{ ("no reaction: " ~ gate.sender ~ " did not become the leader") | json }}
{%- else %}
{#-   The member that signed the event is the one that became leader. #}
{%-   set new = gate.sender %}
{%-   set old = ev.get("old_leader") if ev.get("old_leader") in pgha.postgres_members else "unknown" %}
{%-   set about = {"old_leader": old, "new_leader": new, "timeline": ev.get("timeline")} %}

pgha-heal-role-alert:
  salt.runner:
    - name: event.send
    - tag: pgha/alert/leader_changed
    - data: {{ about | json }}

pgha-heal-role-budget:
  pgha.remediation_allowed:
    - name: {{ ("role_change/" ~ pgha.cluster.name) | json }}
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
    - tag: {{ ("pgha/remediation/role_change/" ~ new) | json }}
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
{%- endif %}
