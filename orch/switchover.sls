# -*- coding: utf-8 -*-
# vim: ft=sls
#
# salt-run state.orchestrate orch.switchover [pillar='{"candidate": "pg-02"}']
#
# A planned switchover: Patroni hands leadership to the candidate (or the healthiest
# replica), the old leader streams from it, etcd's leader moves off the new primary,
# and every HAProxy is checked to send writes to the new leader only. The run holds the
# maintenance lock: self-healing waits until it is done.
{%- from "pgha/map.jinja" import pgha %}
{%- from "orch/macros.jinja" import step, maintenance %}
{%- set candidate = salt["pillar.get"]("candidate") %}
{%- set postgres = pgha.postgres_members %}

pgha-orch-switchover-validate:
  pgha.validated:
    - name: pgha
    - failhard: True

{%- if candidate and candidate not in postgres %}
pgha-orch-switchover-candidate:
  test.fail_without_changes:
    - comment: {{ ("candidate " ~ candidate ~ " is not a postgres node of " ~ pgha.cluster.name
                   ~ "; choose one of " ~ postgres | join(", ")) | json }}
    - failhard: True
{%- endif %}
{{ maintenance("pgha-orch-switchover", "orch.switchover", pgha.checks.replicas_timeout * 3) }}
{{ step("pgha-orch-switchover-healthy-before", postgres, ["pgha.check.replicas"],
        "pgha:pgha-orch-switchover-maintenance", subset=1) }}
{{ step("pgha-orch-switchover-switch", postgres, ["pgha.switchover"],
        "pgha-orch-switchover-healthy-before", subset=1,
        pillar={"pgha_run": {"candidate": candidate}}) }}
{{ step("pgha-orch-switchover-etcd-leader", postgres, ["pgha.etcd.leader"],
        "pgha-orch-switchover-switch", subset=1) }}
{%- if pgha.haproxy_members %}
{{ step("pgha-orch-switchover-routing", pgha.haproxy_members, ["pgha.check.routing"],
        "pgha-orch-switchover-switch") }}
{%- endif %}
