# -*- coding: utf-8 -*-
# vim: ft=sls
#
# salt-run state.orchestrate orch.remove_node pillar='{"node": "pg-04"}'
#
# Shrink the cluster by one postgres node. Refuses the Patroni leader (switch over
# first) and any removal that would leave etcd without a healthy quorum. Otherwise:
# Patroni stops on the node, its etcd member is removed, the node is cleaned (software,
# configuration and data), and the other members and HAProxy stop pointing at it.
# Afterwards, delete the node from pillar.
#
# Each salt.state step queues behind a state run already going on its minions (a
# reaction of the reactor, an operator's highstate) instead of failing on it.
{%- from "pgha/map.jinja" import pgha %}
{%- set node = salt["pillar.get"]("node") %}
{%- set remaining = pgha.postgres_members | reject("equalto", node) | list %}
{%- set without = {"pgha": {"nodes": {node: {"state": "absent"}}}} if node else {} %}
{%- set problem = none %}
{%- if not node %}
{%-   set problem = "name the node to remove: pillar='{\"node\": \"pg-04\"}'" %}
{%- elif node not in pgha.postgres_members %}
{%-   set problem = node ~ " is not a postgres node of " ~ pgha.cluster.name ~ " (members: " ~ pgha.postgres_members | join(", ") ~ ")" %}
{%- else %}
{%-   set leader = salt["saltutil.cmd"](remaining | join(","), "patroni.leader", tgt_type="list", timeout=15).values() | selectattr("retcode", "equalto", 0) | map(attribute="ret") | list %}
{%-   set health = salt["saltutil.cmd"](remaining | join(","), "etcd3.health", tgt_type="list", timeout=15).values() | selectattr("retcode", "equalto", 0) | map(attribute="ret") | list %}
{%-   if not leader %}
{%-     set problem = "no remaining member answered with the Patroni leader; the cluster must be healthy to shrink" %}
{%-   elif leader[0] == node %}
{%-     set problem = node ~ " is the Patroni leader; switch over first (orch.switchover), then remove it" %}
{%-   elif not health %}
{%-     set problem = "no remaining member answered with etcd's health" %}
{%-   else %}
{%-     set alive = health[0] | dictsort | selectattr("1.healthy") | map(attribute="0") | reject("equalto", node) | list %}
{%-     if alive | length < (remaining | length) // 2 + 1 %}
{%-       set problem = "removing " ~ node ~ " would leave " ~ (alive | length) ~ " healthy etcd members of " ~ (remaining | length) ~ ": no quorum" %}
{%-     elif remaining | length < 3 and not pgha.cluster.dev_single_etcd %}
{%-       set problem = "removing " ~ node ~ " would leave " ~ (remaining | length) ~ " etcd members; at least 3 are needed to survive a failure" %}
{%-     endif %}
{%-   endif %}
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

pgha-orch-remove-node-patroni-stopped:
  salt.state:
    - queue: True
    - tgt: {{ node }}
    - sls: [pgha.patroni.service.clean]
    - failhard: True
    - require:
      - pgha: pgha-orch-remove-node-validate

pgha-orch-remove-node-etcd-member:
  salt.state:
    - queue: True
    - tgt: {{ remaining | join(",") }}
    - tgt_type: list
    - subset: 1
    - sls: [pgha.etcd.member]
    - pillar:
        pgha_run: {member: {{ node }}, absent: true}
    - failhard: True
    - require:
      - salt: pgha-orch-remove-node-patroni-stopped

# A removed member's data must never be reused: the node is cleaned with its data.
pgha-orch-remove-node-clean:
  salt.state:
    - queue: True
    - tgt: {{ node }}
    - sls: [pgha.clean]
    - pillar:
        pgha: {clean: {remove_data: true}}
    - failhard: True
    - require:
      - salt: pgha-orch-remove-node-etcd-member

pgha-orch-remove-node-members-forget:
  salt.state:
    - queue: True
    - tgt: {{ remaining | join(",") }}
    - tgt_type: list
    - sls: [pgha.etcd, pgha.patroni]
    - pillar: {{ without | json }}
    - failhard: True
    - require:
      - salt: pgha-orch-remove-node-clean

pgha-orch-remove-node-healthy:
  salt.state:
    - queue: True
    - tgt: {{ remaining | join(",") }}
    - tgt_type: list
    - subset: 1
    - sls: [pgha.check.replicas]
    - pillar: {{ without | json }}
    - failhard: True
    - require:
      - salt: pgha-orch-remove-node-members-forget

{%-   if pgha.haproxy_members %}
pgha-orch-remove-node-haproxy:
  salt.state:
    - queue: True
    - tgt: {{ pgha.haproxy_members | join(",") }}
    - tgt_type: list
    - sls: [pgha.haproxy]
    - pillar: {{ without | json }}
    - failhard: True
    - require:
      - salt: pgha-orch-remove-node-healthy

pgha-orch-remove-node-routing:
  salt.state:
    - queue: True
    - tgt: {{ pgha.haproxy_members | join(",") }}
    - tgt_type: list
    - sls: [pgha.check.routing]
    - require:
      - salt: pgha-orch-remove-node-haproxy
{%-   endif %}
{%- endif %}
