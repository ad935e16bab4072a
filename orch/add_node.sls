# -*- coding: utf-8 -*-
# vim: ft=sls
#
# salt-run state.orchestrate orch.add_node pillar='{"node": "pg-04"}'
#
# Grow the cluster by one postgres node. First add the node to pillar (pgha:nodes) with
# its address, roles: [postgres] and etcd_join: existing. Then: the running members
# learn about it (pg_hba, etcd hosts; reloads only), etcd announces it as a learner
# (once etcd would accept a membership change), it starts etcd with
# initial-cluster-state existing and is promoted to a voter, Patroni clones it from the
# leader, and HAProxy gets it as a backend. The run holds the maintenance lock.
{%- from "pgha/map.jinja" import pgha %}
{%- from "orch/macros.jinja" import step, maintenance %}
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
{%-   set member = {"member": node, "address": spec.address} %}
{{ maintenance("pgha-orch-add-node", "orch.add_node", pgha.checks.replicas_timeout * 3) }}
{{ step("pgha-orch-add-node-healthy-before", running, ["pgha.check.replicas"],
        "pgha:pgha-orch-add-node-maintenance", subset=1, pillar=without) }}
{{ step("pgha-orch-add-node-sync", [node], ["pgha.sync"], "pgha-orch-add-node-healthy-before") }}

# The running members learn the new node: pg_hba admits its replication connection and
# Patroni's etcd hosts include it (a reload each, no restart).
{{ step("pgha-orch-add-node-members-learn", running, ["pgha.etcd", "pgha.patroni"],
        "pgha-orch-add-node-sync") }}

# etcd accepts a member add only from a member connected to every other voter (a fault
# a minute ago can leave one disconnected while /health says healthy): wait for it.
{{ step("pgha-orch-add-node-etcd-ready", running, ["pgha.check.etcd"], "pgha-orch-add-node-members-learn",
        subset=1, pillar={"pgha_run": {"membership": true}}) }}

# etcd's runtime reconfiguration: `member add` (as a learner) comes first ...
{{ step("pgha-orch-add-node-etcd-announce", running, ["pgha.etcd.member"], "pgha-orch-add-node-etcd-ready",
        subset=1, pillar={"pgha_run": dict(member, promote=false)}) }}

# ... then the node starts etcd with an empty data directory and
# initial-cluster-state existing (etcd_join: existing) ...
{{ step("pgha-orch-add-node-etcd-start", [node], ["pgha.etcd"], "pgha-orch-add-node-etcd-announce") }}

# ... and once it has caught up, the learner becomes a voter.
{{ step("pgha-orch-add-node-etcd-promote", running, ["pgha.etcd.member"], "pgha-orch-add-node-etcd-start",
        subset=1, pillar={"pgha_run": dict(member, promote=true)}) }}
{{ step("pgha-orch-add-node-etcd-quorum", [node], ["pgha.check.etcd"], "pgha-orch-add-node-etcd-promote") }}

# Patroni clones the node from the leader (pg_basebackup) and it streams.
{%- set ns = namespace(before_patroni="pgha-orch-add-node-etcd-quorum") %}
{%- if pgha.backup_ready %}
# The backup node admits the new member first: its first restore from the repository
# would otherwise be refused and retried for minutes before pg_basebackup.
{{ step("pgha-orch-add-node-backup", [pgha.backup_node], ["pgha.pgbackrest"], "pgha-orch-add-node-etcd-quorum") }}
{%-   set ns.before_patroni = "pgha-orch-add-node-backup" %}
{%- endif %}
{{ step("pgha-orch-add-node-patroni", [node], ["pgha.postgres", "pgha.pgbackrest", "pgha.patroni"], ns.before_patroni) }}
{{ step("pgha-orch-add-node-streaming", [node], ["pgha.check.replicas"], "pgha-orch-add-node-patroni") }}
{{ step("pgha-orch-add-node-beacons", [node], ["pgha.beacons"], "pgha-orch-add-node-streaming") }}

{%-   if pgha.haproxy_members %}
{{ step("pgha-orch-add-node-haproxy", pgha.haproxy_members, ["pgha.haproxy"], "pgha-orch-add-node-streaming") }}
{{ step("pgha-orch-add-node-routing", pgha.haproxy_members, ["pgha.check.routing"], "pgha-orch-add-node-haproxy") }}
{%-   endif %}
{%- endif %}
