# -*- coding: utf-8 -*-
# vim: ft=sls
#
# salt-run state.orchestrate orch.switchover [pillar='{"candidate": "pg-02"}']
#
# A planned switchover: Patroni hands leadership to the candidate (or the healthiest
# replica), the old leader streams from it, etcd's leader moves off the new primary,
# and every HAProxy is checked to send writes to the new leader only.
#
# Each salt.state step queues behind a state run already going on its minions (a
# reaction of the reactor, an operator's highstate) instead of failing on it.
{%- from "pgha/map.jinja" import pgha %}
{%- set candidate = salt["pillar.get"]("candidate") %}

pgha-orch-switchover-validate:
  pgha.validated:
    - name: pgha
    - failhard: True

{%- if candidate and candidate not in pgha.postgres_members %}
pgha-orch-switchover-candidate:
  test.fail_without_changes:
    - comment: >-
        candidate {{ candidate }} is not a postgres node of {{ pgha.cluster.name }};
        choose one of {{ pgha.postgres_members | join(", ") }}
    - failhard: True
{%- endif %}

pgha-orch-switchover-healthy-before:
  salt.state:
    - queue: True
    - tgt: 'roles:postgres'
    - tgt_type: grain
    - subset: 1
    - sls: [pgha.check.replicas]
    - failhard: True
    - require:
      - pgha: pgha-orch-switchover-validate

pgha-orch-switchover-switch:
  salt.state:
    - queue: True
    - tgt: 'roles:postgres'
    - tgt_type: grain
    - subset: 1
    - sls: [pgha.switchover]
    - pillar:
        pgha_run:
          candidate: {{ candidate | json }}
    - failhard: True
    - require:
      - salt: pgha-orch-switchover-healthy-before

pgha-orch-switchover-etcd-leader:
  salt.state:
    - queue: True
    - tgt: 'roles:postgres'
    - tgt_type: grain
    - subset: 1
    - sls: [pgha.etcd.leader]
    - require:
      - salt: pgha-orch-switchover-switch

{%- if pgha.haproxy_members %}
pgha-orch-switchover-routing:
  salt.state:
    - queue: True
    - tgt: {{ pgha.haproxy_members | join(",") }}
    - tgt_type: list
    - sls: [pgha.check.routing]
    - failhard: True
    - require:
      - salt: pgha-orch-switchover-switch
{%- endif %}
