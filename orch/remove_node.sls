# -*- coding: utf-8 -*-
# vim: ft=sls
#
# salt-run state.orchestrate orch.remove_node pillar='{"node": "pg-04"}'
#
# Shrink the cluster by one postgres node. Refuses the Patroni leader (switch over
# first) and any removal that would leave etcd without a healthy quorum
# (pgha.removal_plan). Otherwise: the node's beacons go first (so the reactor does not
# start again what this run stops), it is checked once more not to lead right before
# Patroni stops on it, its etcd member is removed, the node is cleaned (software,
# configuration and data), and the other members and HAProxy stop pointing at it.
# Afterwards, delete the node from pillar. The run holds the maintenance lock.
{%- from "pgha/map.jinja" import pgha %}
{%- from "orch/macros.jinja" import step, maintenance %}
{%- set node = salt["pillar.get"]("node") %}
{%- set remaining = pgha.postgres_members | reject("equalto", node) | list %}
{%- set without = {"pgha": {"nodes": {node: {"state": "absent"}}}} if node else {} %}
{%- if not node %}
{%-   set problem = "name the node to remove: pillar='{\"node\": \"pg-04\"}'" %}
{%- else %}
{%-   set problem = salt["pgha.removal_plan"](node).problem %}
{%- endif %}

pgha-orch-remove-node-validate:
  pgha.validated:
    - name: pgha
    - failhard: True

{%- if problem %}
pgha-orch-remove-node-refused:
  test.fail_without_changes:
    - comment: {{ problem | json }}
    - failhard: True
{%- else %}
{{ maintenance("pgha-orch-remove-node", "orch.remove_node", pgha.checks.replicas_timeout * 2) }}
{{ step("pgha-orch-remove-node-beacons-off", [node], ["pgha.beacons.clean"],
        "pgha:pgha-orch-remove-node-maintenance") }}

# The leader may have changed since this run was planned: check again, right before.
{{ step("pgha-orch-remove-node-not-leader", remaining, ["pgha.check.not_leader"],
        "pgha-orch-remove-node-beacons-off", subset=1, pillar={"pgha_run": {"member": node}}) }}
{{ step("pgha-orch-remove-node-patroni-stopped", [node], ["pgha.patroni.service.clean"],
        "pgha-orch-remove-node-not-leader") }}
{{ step("pgha-orch-remove-node-etcd-ready", remaining, ["pgha.check.etcd"],
        "pgha-orch-remove-node-patroni-stopped", subset=1, pillar={"pgha_run": {"membership": true}}) }}
{{ step("pgha-orch-remove-node-etcd-member", remaining, ["pgha.etcd.member"],
        "pgha-orch-remove-node-etcd-ready", subset=1, pillar={"pgha_run": {"member": node, "absent": true}}) }}

# A removed member's data must never be reused: the node is cleaned with its data.
{{ step("pgha-orch-remove-node-clean", [node], ["pgha.clean"], "pgha-orch-remove-node-etcd-member",
        pillar={"pgha": {"clean": {"remove_data": true}}}) }}
{{ step("pgha-orch-remove-node-members-forget", remaining, ["pgha.etcd", "pgha.patroni"],
        "pgha-orch-remove-node-clean", pillar=without) }}
{{ step("pgha-orch-remove-node-healthy", remaining, ["pgha.check.replicas"],
        "pgha-orch-remove-node-members-forget", subset=1, pillar=without) }}
{%-   if pgha.backup_ready %}
{{ step("pgha-orch-remove-node-backup", [pgha.backup_node], ["pgha.pgbackrest"],
        "pgha-orch-remove-node-healthy", pillar=without) }}
{%-   endif %}
{%-   if pgha.haproxy_members %}
{{ step("pgha-orch-remove-node-haproxy", pgha.haproxy_members, ["pgha.haproxy"],
        "pgha-orch-remove-node-healthy", pillar=without) }}
{{ step("pgha-orch-remove-node-routing", pgha.haproxy_members, ["pgha.check.routing"],
        "pgha-orch-remove-node-haproxy") }}
{%-   endif %}
{%- endif %}
