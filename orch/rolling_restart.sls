# -*- coding: utf-8 -*-
# vim: ft=sls
#
# salt-run state.orchestrate orch.rolling_restart [pillar='{"force": true}']
#
# Restart PostgreSQL on every member that has a pending restart (every member with
# force): replicas first, one at a time, each waited on until it streams again; then a
# switchover; then the old leader. Patroni performs each restart.
#
# One exception: lowering a parameter a standby must match (max_connections,
# max_worker_processes, max_wal_senders, max_prepared_transactions,
# max_locks_per_transaction). No replica can run with less than its primary, so that
# change can only start at the primary: it is restarted in place first (a short write
# pause), then the replicas.
#
# Each salt.state step queues behind a state run already going on its minions (a
# reaction of the reactor, an operator's highstate) instead of failing on it.
{%- from "pgha/map.jinja" import pgha %}
{%- set force = salt["pillar.get"]("force", False) %}
{%- set answers = salt["saltutil.cmd"]("roles:postgres", "patroni.list", tgt_type="grain", timeout=15) %}
{%- set members = [] %}
{%- for minion, answer in answers | dictsort %}
{%-   if not members and answer.get("retcode", 1) == 0 and answer.get("ret") is iterable and answer.ret is not string %}
{%-     do members.extend(answer.ret) %}
{%-   endif %}
{%- endfor %}
{%- set leader = (members | selectattr("role", "equalto", "leader") | map(attribute="member") | list + [none]) | first %}
{%- set replicas = members | rejectattr("role", "equalto", "leader") | list %}
{%- set leader_pending = force or (members | selectattr("role", "equalto", "leader") | selectattr("pending_restart") | list | length > 0) %}
{%- set standby_bound = ["max_connections", "max_worker_processes", "max_wal_senders", "max_prepared_transactions", "max_locks_per_transaction"] %}
{%- set reasons = {} %}
{%- for minion, answer in salt["saltutil.cmd"]("roles:postgres", "patroni.pending_restarts", tgt_type="grain", timeout=15) | dictsort %}
{%-   if not reasons and answer.get("retcode", 1) == 0 and answer.ret is mapping %}
{%-     do reasons.update(answer.ret) %}
{%-   endif %}
{%- endfor %}
{%- set ns_lower = namespace(primary_first=false) %}
{%- for param, change in reasons.get(leader, {}) | dictsort %}
{%-   if param in standby_bound and (change.new_value | int) < (change.old_value | int) %}
{%-     set ns_lower.primary_first = true %}
{%-   endif %}
{%- endfor %}
{%- set primary_first = ns_lower.primary_first %}

pgha-orch-rolling-restart-validate:
  pgha.validated:
    - name: pgha
    - failhard: True

{%- if not leader %}
pgha-orch-rolling-restart-refused:
  test.fail_without_changes:
    - comment: >-
        no Patroni leader answered ({{ answers | length }} postgres minions asked); a rolling
        restart needs a healthy cluster
    - failhard: True
{%- endif %}

pgha-orch-rolling-restart-healthy-before:
  salt.state:
    - queue: True
    - tgt: 'roles:postgres'
    - tgt_type: grain
    - subset: 1
    - sls: [pgha.check.replicas]
    - failhard: True
    - require:
      - pgha: pgha-orch-rolling-restart-validate

{#- A namespace: plain `set` inside a for loop does not outlive the loop in Jinja. #}
{%- set ns = namespace(previous="pgha-orch-rolling-restart-healthy-before") %}

{%- if primary_first %}
# A standby-bound parameter goes down: the primary first, in place, then the replicas.
pgha-orch-rolling-restart-{{ leader }}-in-place:
  salt.state:
    - queue: True
    - tgt: 'roles:postgres'
    - tgt_type: grain
    - subset: 1
    - sls: [pgha.restart]
    - pillar:
        pgha_run:
          member: {{ leader }}
          pending_only: {{ (not force) | json }}
    - failhard: True
    - require:
      - salt: {{ ns.previous }}
{%-   set ns.previous = "pgha-orch-rolling-restart-" ~ leader ~ "-in-place" %}
{%- endif %}
{%- for replica in replicas | sort(attribute="member") %}
{%-   if force or replica.pending_restart %}
pgha-orch-rolling-restart-{{ replica.member }}:
  salt.state:
    - queue: True
    - tgt: 'roles:postgres'
    - tgt_type: grain
    - subset: 1
    - sls: [pgha.restart]
    - pillar:
        pgha_run:
          member: {{ replica.member }}
          pending_only: {{ (not force) | json }}
    - failhard: True
    - require:
      - salt: {{ ns.previous }}
{%-     set ns.previous = "pgha-orch-rolling-restart-" ~ replica.member %}
{%-   endif %}
{%- endfor %}

{%- if leader_pending and not primary_first %}
# The leader is restarted only as a replica: first it hands over.
pgha-orch-rolling-restart-switchover:
  salt.state:
    - queue: True
    - tgt: 'roles:postgres'
    - tgt_type: grain
    - subset: 1
    - sls: [pgha.switchover]
    - pillar:
        pgha_run:
          candidate: null
    - failhard: True
    - require:
      - salt: {{ ns.previous }}

# Its demotion already restarted it; this restarts it only if something is still pending.
pgha-orch-rolling-restart-{{ leader }}:
  salt.state:
    - queue: True
    - tgt: 'roles:postgres'
    - tgt_type: grain
    - subset: 1
    - sls: [pgha.restart]
    - pillar:
        pgha_run:
          member: {{ leader }}
          pending_only: true
    - failhard: True
    - require:
      - salt: pgha-orch-rolling-restart-switchover

pgha-orch-rolling-restart-etcd-leader:
  salt.state:
    - queue: True
    - tgt: 'roles:postgres'
    - tgt_type: grain
    - subset: 1
    - sls: [pgha.etcd.leader]
    - require:
      - salt: pgha-orch-rolling-restart-{{ leader }}
{%- endif %}

{%- if pgha.haproxy_members %}
pgha-orch-rolling-restart-routing:
  salt.state:
    - queue: True
    - tgt: {{ pgha.haproxy_members | join(",") }}
    - tgt_type: list
    - sls: [pgha.check.routing]
    - require:
      - salt: {{ ("pgha-orch-rolling-restart-" ~ leader) if leader_pending and not primary_first else ns.previous }}
{%- endif %}
