# -*- coding: utf-8 -*-
# vim: ft=sls
# Reaction to `salt/beacon/<minion>/pgha_etcd/unhealthy`: the member runs but is not
# healthy. It is restarted only while the other members hold a quorum without it (a
# member unhealthy only because quorum is lost is left alone: restarting it cannot help
# and could cost what is left), and only one member at a time. If it does not come back
# healthy, alert. Its data is never wiped (a member that cannot rejoin needs a person:
# orch.remove_node, then orch.add_node).
{%- from "pgha/map.jinja" import pgha %}
{%- from "orch/heal/gate.jinja" import limit_reached, not_acting %}
{%- set tag = salt["pillar.get"]("event_tag", "") %}
{%- set ev = salt["pillar.get"]("event_data", {}) %}
{%- set gate = salt["pgha_event.gate"](tag, ev, "etcd") %}
{%- if not gate.act %}
{{ not_acting(gate, tag, "etcd") }}
{%- else %}
{%-   set member = gate.sender %}
{%-   set owner = member ~ "/" ~ salt["random.get_str"](8, punctuation=False) %}
{%-   set about = {"member": member, "reason": ev.get("reason"), "action": "restart etcd"} %}

pgha-heal-etcd-budget:
  pgha.remediation_allowed:
    - name: {{ ("etcd/" ~ member) | json }}
    - max_attempts: {{ pgha.heal.max_attempts }}
    - window: {{ pgha.heal.window }}
    - record: False

# One etcd member restarted at a time, cluster-wide.
pgha-heal-etcd-slot:
  pgha.lease_held:
    - name: etcd
    - owner: {{ owner | json }}
    - ttl: 180
    - operator_ok: False
    - require:
      - pgha: pgha-heal-etcd-budget

pgha-heal-etcd-quorum-without-it:
  salt.state:
    - tgt: {{ member | json }}
    - queue: True
    - sls: [pgha.check.etcd_quorum_without]
    - pillar:
        pgha_run: {{ {"member": member} | json }}
    - require:
      - pgha: pgha-heal-etcd-slot

pgha-heal-etcd-counted:
  pgha.remediation_counted:
    - name: {{ ("etcd/" ~ member) | json }}
    - max_attempts: {{ pgha.heal.max_attempts }}
    - window: {{ pgha.heal.window }}
    - require:
      - salt: pgha-heal-etcd-quorum-without-it

pgha-heal-etcd-restart:
  salt.function:
    - name: service.restart
    - tgt: {{ member | json }}
    - arg: {{ [pgha.etcd.service] | json }}
    - require:
      - pgha: pgha-heal-etcd-counted

pgha-heal-etcd-healthy:
  salt.state:
    - tgt: {{ member | json }}
    # Wait for a state run already going on that minion (an operator's highstate).
    - queue: True
    - sls: [pgha.check.etcd_member]
    - require:
      - salt: pgha-heal-etcd-restart

pgha-heal-etcd-done:
  salt.runner:
    - name: event.send
    - tag: {{ ("pgha/remediation/etcd/" ~ member) | json }}
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
      - pgha: pgha-heal-etcd-counted
    - onfail:
      - salt: pgha-heal-etcd-restart
      - salt: pgha-heal-etcd-healthy

pgha-heal-etcd-no-quorum-without-it:
  salt.runner:
    - name: event.send
    - tag: pgha/alert/etcd_member
    - data: {{ dict(about, action="none", result="the other members have no quorum without it: not restarting it") | json }}
    - require:
      - pgha: pgha-heal-etcd-slot
    - onfail:
      - salt: pgha-heal-etcd-quorum-without-it

pgha-heal-etcd-busy:
  salt.runner:
    - name: event.send
    - tag: pgha/remediation/skipped
    - data: {{ dict(about, reaction="etcd", why="another etcd member is being restarted") | json }}
    - require:
      - pgha: pgha-heal-etcd-budget
    - onfail:
      - pgha: pgha-heal-etcd-slot

{{ limit_reached(pgha, "etcd", "etcd", member, "etcd", about) }}

pgha-heal-etcd-slot-free:
  pgha.lease_released:
    - name: etcd
    - owner: {{ owner | json }}
    - order: last
{%- endif %}
