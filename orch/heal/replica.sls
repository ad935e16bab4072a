# -*- coding: utf-8 -*-
# vim: ft=sls
# Reaction to `salt/beacon/<minion>/pgha_patroni/state` from a replica that has failed
# (start failed, crashed, stopped, or running without streaming) for its grace period.
# The member's own minion first judges, re-checking for pgha:heal:reinit_grace seconds
# (a local fault must last all of them; up to twice that to see it settle),
# whether the fault is its own (patroni.replica_fault; it reads the member's log):
# - local (the leader runs and another replica streams, or its log shows a timeline it
#   cannot follow): Patroni rebuilds it from the leader (reinit, never forced). One
#   reinit runs cluster-wide at a time; the budget counts only reinits really requested.
# - cluster_wide (no replica streams): a reinit would wipe every replica and fail for
#   the same reason. pgha/alert/replication_broken says what was seen; nothing is touched.
# - anything else (recovered, in transition, paused, no leader): nothing to do.
# The leader is never touched.
{%- from "pgha/map.jinja" import pgha %}
{%- from "orch/heal/gate.jinja" import limit_reached, not_acting %}
{%- set tag = salt["pillar.get"]("event_tag", "") %}
{%- set ev = salt["pillar.get"]("event_data", {}) %}
{%- set gate = salt["pgha_event.gate"](tag, ev, "reinit") %}
{%- if not gate.act %}
{{ not_acting(gate, tag, "replica") }}
{%- elif ev.get("role") != "replica" %}
pgha-heal-replica-not-a-replica:
  test.nop:
    - name: {{ ("no reinit: " ~ gate.sender ~ " reported itself as " ~ ev.get("role")) | json }}
{%- else %}
{%-   set member = gate.sender %}
{%-   set answer = salt["saltutil.cmd"](member, "patroni.replica_fault",
                                       kwarg={"grace": pgha.heal.reinit_grace},
                                       timeout=2 * pgha.heal.reinit_grace + 60).get(member, {}) %}
{%-   set fault = answer.ret if answer.get("retcode", 1) == 0 and answer.ret is mapping else
                  {"verdict": "unknown", "evidence": "its minion could not judge it: " ~ (answer.ret | default("no answer", true) | string)} %}
{%- endif %}
{%- if gate.act and ev.get("role") == "replica" and fault.verdict == "cluster_wide" %}

pgha-heal-replica-replication-broken:
  salt.runner:
    - name: event.send
    - tag: pgha/alert/replication_broken
    - data: {{ {"member": member, "state": fault.state, "evidence": fault.evidence,
                "action": "none: a reinit cannot mend a fault outside the replica"} | json }}
{%- elif gate.act and ev.get("role") == "replica" and fault.verdict != "local" %}

pgha-heal-replica-nothing-to-do:
  test.nop:
    - name: {{ ("no reinit of " ~ member ~ " (" ~ fault.verdict ~ "): " ~ fault.evidence) | json }}
{%- elif gate.act and ev.get("role") == "replica" %}
{%-   set owner = member ~ "/" ~ salt["random.get_str"](8, punctuation=False) %}
{%-   set budget = "reinit/" ~ member %}
{%-   set about = {"member": member, "state": ev.get("state"), "action": "patroni.reinit",
                   "evidence": fault.evidence} %}

pgha-heal-replica-budget:
  pgha.remediation_allowed:
    - name: {{ budget | json }}
    - max_attempts: {{ pgha.heal.max_attempts }}
    - window: {{ pgha.heal.window }}
    # Counted below, only once a reinit was really requested.
    - record: False

# One reinit cluster-wide at a time; the slot ends by itself if this run dies.
pgha-heal-replica-slot:
  pgha.lease_held:
    - name: reinit
    - owner: {{ owner | json }}
    - ttl: {{ pgha.checks.replicas_timeout * 2 + pgha.heal.reinit_grace + 120 }}
    - operator_ok: False
    - require:
      - pgha: pgha-heal-replica-budget

# On the member's own minion: it reads the member's log to judge the fault.
pgha-heal-replica-reinit:
  salt.state:
    - tgt: {{ member | json }}
    # Wait for a state run already going on that minion (an operator's highstate).
    - queue: True
    - sls: [pgha.reinit]
    - pillar:
        # Judged just now: the state only checks once more right before it acts.
        pgha_run: {{ {"member": member, "grace": 0} | json }}
    - require:
      - pgha: pgha-heal-replica-slot

pgha-heal-replica-counted:
  pgha.remediation_counted:
    - name: {{ budget | json }}
    - max_attempts: {{ pgha.heal.max_attempts }}
    - window: {{ pgha.heal.window }}
    - onchanges:
      - salt: pgha-heal-replica-reinit

pgha-heal-replica-done:
  salt.runner:
    - name: event.send
    - tag: {{ ("pgha/remediation/reinit/" ~ member) | json }}
    # Only after a reinit the state saw through: the member's own API says streaming.
    - data: {{ dict(about, result="streaming") | json }}
    - require:
      - salt: pgha-heal-replica-reinit
    - onchanges:
      - salt: pgha-heal-replica-reinit

pgha-heal-replica-failed:
  salt.runner:
    - name: event.send
    - tag: pgha/alert/reinit_failed
    - data: {{ dict(about, result="failed") | json }}
    # Only when an attempt was made: a refused one is reported as remediation_limit.
    - require:
      - pgha: pgha-heal-replica-slot
    - onfail:
      - salt: pgha-heal-replica-reinit

pgha-heal-replica-busy:
  salt.runner:
    - name: event.send
    - tag: pgha/remediation/skipped
    - data: {{ dict(about, reaction="replica", why="another reinit is in flight") | json }}
    - require:
      - pgha: pgha-heal-replica-budget
    - onfail:
      - pgha: pgha-heal-replica-slot

{{ limit_reached(pgha, "replica", "reinit", member, "patroni", about) }}

pgha-heal-replica-slot-free:
  pgha.lease_released:
    - name: reinit
    - owner: {{ owner | json }}
    - order: last
{%- endif %}
