# -*- coding: utf-8 -*-
# vim: ft=sls
#
# salt-run state.orchestrate orch.rolling_restart [pillar='{"force": true}']
# salt-run state.orchestrate orch.rolling_restart pillar='{"service": true}'
#
# Restart PostgreSQL on every member that has a pending restart (every member with
# force): replicas first, one at a time, each waited on until it streams again; then a
# switchover; then the old leader. Patroni performs each restart.
#
# One exception: lowering a parameter a standby must match (max_connections,
# max_worker_processes, max_wal_senders, max_prepared_transactions,
# max_locks_per_transaction). No replica can run with less than its primary, so that
# change can only start at the primary: it is restarted in place first (a short write
# pause), then the replicas. The order is planned by pgha.rolling_restart_plan.
#
# With service: true, Patroni's own process is restarted instead, on every member, one
# at a time, the leader last after a switchover: how a changed Patroni package or unit
# (pgha:patroni:install_method deb to pip, a new pinned version) reaches a running
# cluster. Each member first gets its pgha.patroni state.
#
# The run holds the maintenance lock: self-healing waits until it is done.
{%- from "pgha/map.jinja" import pgha %}
{%- from "orch/macros.jinja" import step, maintenance %}
{%- set postgres = pgha.postgres_members %}
{%- set force = salt["pillar.get"]("force", False) %}
{%- set service = salt["pillar.get"]("service", False) %}
{%- set plan = salt["pgha.rolling_restart_plan"](postgres, force=force, service=service) %}

pgha-orch-rolling-restart-validate:
  pgha.validated:
    - name: pgha
    - failhard: True

{%- if plan.problem %}
pgha-orch-rolling-restart-refused:
  test.fail_without_changes:
    - comment: {{ plan.problem | json }}
    - failhard: True
{%- endif %}
{{ maintenance("pgha-orch-rolling-restart", "orch.rolling_restart", pgha.checks.replicas_timeout * (postgres | length + 2)) }}
{{ step("pgha-orch-rolling-restart-healthy-before", postgres, ["pgha.check.replicas"],
        "pgha:pgha-orch-rolling-restart-maintenance", subset=1) }}
{%- set ns = namespace(previous="pgha-orch-rolling-restart-healthy-before") %}
{%- for action in plan.steps %}
{%-   set id = "pgha-orch-rolling-restart-" ~ action.name %}
{%-   if action.kind == "switchover" %}
{{ step(id, postgres, ["pgha.switchover"], ns.previous, subset=1,
        pillar={"pgha_run": {"candidate": none}}) }}
{%-   elif action.kind == "service" %}
{#-   On the member itself: apply its Patroni state, then restart the process. #}
{{ step(id, [action.member], ["pgha.patroni.service.restarted"], ns.previous) }}
{%-   else %}
{{ step(id, postgres, ["pgha.restart"], ns.previous, subset=1,
        pillar={"pgha_run": {"member": action.member, "pending_only": action.pending_only}}) }}
{%-   endif %}
{%-   set ns.previous = id %}
{%- endfor %}
{%- if plan.moves_leader %}
{{ step("pgha-orch-rolling-restart-etcd-leader", postgres, ["pgha.etcd.leader"], ns.previous, subset=1) }}
{%- endif %}
{%- if pgha.haproxy_members %}
{{ step("pgha-orch-rolling-restart-routing", pgha.haproxy_members, ["pgha.check.routing"], ns.previous) }}
{%- endif %}
