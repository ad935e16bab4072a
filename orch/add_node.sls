# -*- coding: utf-8 -*-
# vim: ft=sls
#
# salt-run state.orchestrate orch.add_node pillar='{"node": "pg-04"}'
#
# Grow the cluster by one postgres node. First add the node to pillar (pgha:nodes) with
# its address, roles: [postgres] and etcd_join: existing. Then: the running members
# learn about it (pg_hba, etcd hosts; reloads only), etcd announces it as a learner,
# it starts etcd with initial-cluster-state existing and is promoted to a voter, Patroni
# clones it from the leader, and HAProxy gets it as a backend.
#
# Each salt.state step queues behind a state run already going on its minions (a
# reaction of the reactor, an operator's highstate) instead of failing on it.
{%- from "pgha/map.jinja" import pgha %}
{%- set node = salt["pillar.get"]("node") %}
{%- set spec = pgha.nodes.get(node) if node else none %}
{%- set running = pgha.postgres_members | reject("equalto", node) | list %}
{#- The cluster as it is now, without the new node: for the checks before it joins. #}
{%- set without = {"pgha": {"nodes": {node: {"state": "absent"}}}} if node else {} %}
{%- set problem = none %}
{%- if not node %}
{%-   set problem = "name the node to add: pillar='{\"node\": \"pg-04\"}'" %}
{%- elif spec is none %}
{%-   set problem = node ~ " is not in pillar pgha:nodes; add it first (address, roles: [postgres], etcd_join: existing)" %}
{%- elif "postgres" not in spec.get("roles", []) %}
{%-   set problem = node ~ " does not have the postgres role in pillar" %}
{%- elif spec.get("etcd_join") != "existing" %}
{%-   set problem = node ~ " needs etcd_join: existing in pillar: it joins a running etcd cluster, it does not bootstrap one" %}
{%- endif %}

pgha-orch-add-node-validate:
  pgha.validated:
    - name: pgha
    - failhard: True

{%- if problem %}
pgha-orch-add-node-refused:
  test.fail_without_changes:
    - comment: {{ problem | json }}
    - failhard: True
{%- else %}

pgha-orch-add-node-healthy-before:
  salt.state:
    - queue: True
    - tgt: {{ running | join(",") }}
    - tgt_type: list
    - subset: 1
    - sls: [pgha.check.replicas]
    - pillar: {{ without | json }}
    - failhard: True
    - require:
      - pgha: pgha-orch-add-node-validate

pgha-orch-add-node-sync:
  salt.state:
    - queue: True
    - tgt: {{ node }}
    - sls: [pgha.sync]
    - failhard: True
    - require:
      - salt: pgha-orch-add-node-healthy-before

# The running members learn the new node: pg_hba admits its replication connection and
# Patroni's etcd hosts include it (a reload each, no restart).
pgha-orch-add-node-members-learn:
  salt.state:
    - queue: True
    - tgt: {{ running | join(",") }}
    - tgt_type: list
    - sls: [pgha.etcd, pgha.patroni]
    - failhard: True
    - require:
      - salt: pgha-orch-add-node-sync

# etcd's runtime reconfiguration: `member add` (as a learner) comes first ...
pgha-orch-add-node-etcd-announce:
  salt.state:
    - queue: True
    - tgt: {{ running | join(",") }}
    - tgt_type: list
    - subset: 1
    - sls: [pgha.etcd.member]
    - pillar:
        pgha_run: {member: {{ node }}, address: {{ spec.address }}, promote: false}
    - failhard: True
    - require:
      - salt: pgha-orch-add-node-members-learn

# ... then the node starts etcd with an empty data directory and
# initial-cluster-state existing (etcd_join: existing) ...
pgha-orch-add-node-etcd-start:
  salt.state:
    - queue: True
    - tgt: {{ node }}
    - sls: [pgha.etcd]
    - failhard: True
    - require:
      - salt: pgha-orch-add-node-etcd-announce

# ... and once it has caught up, the learner becomes a voter.
pgha-orch-add-node-etcd-promote:
  salt.state:
    - queue: True
    - tgt: {{ running | join(",") }}
    - tgt_type: list
    - subset: 1
    - sls: [pgha.etcd.member]
    - pillar:
        pgha_run: {member: {{ node }}, address: {{ spec.address }}, promote: true}
    - failhard: True
    - require:
      - salt: pgha-orch-add-node-etcd-start

pgha-orch-add-node-etcd-quorum:
  salt.state:
    - queue: True
    - tgt: {{ node }}
    - sls: [pgha.check.etcd]
    - failhard: True
    - require:
      - salt: pgha-orch-add-node-etcd-promote

# Patroni clones the node from the leader (pg_basebackup) and it streams.
pgha-orch-add-node-patroni:
  salt.state:
    - queue: True
    - tgt: {{ node }}
    - sls: [pgha.postgres, pgha.patroni]
    - failhard: True
    - require:
      - salt: pgha-orch-add-node-etcd-quorum

pgha-orch-add-node-streaming:
  salt.state:
    - queue: True
    - tgt: {{ node }}
    - sls: [pgha.check.replicas]
    - failhard: True
    - require:
      - salt: pgha-orch-add-node-patroni

{%-   if pgha.haproxy_members %}
pgha-orch-add-node-haproxy:
  salt.state:
    - queue: True
    - tgt: {{ pgha.haproxy_members | join(",") }}
    - tgt_type: list
    - sls: [pgha.haproxy]
    - failhard: True
    - require:
      - salt: pgha-orch-add-node-streaming

pgha-orch-add-node-routing:
  salt.state:
    - queue: True
    - tgt: {{ pgha.haproxy_members | join(",") }}
    - tgt_type: list
    - sls: [pgha.check.routing]
    - require:
      - salt: pgha-orch-add-node-haproxy
{%-   endif %}
{%- endif %}
