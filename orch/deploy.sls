# -*- coding: utf-8 -*-
# vim: ft=sls
#
# salt-run state.orchestrate orch.deploy
#
# The rollout, from bare nodes to a checked cluster. Each step starts only after the
# check before it passed; the first failure stops the run (failhard) and its comment
# says what failed and on which minion. Re-running it on a healthy cluster changes and
# restarts nothing.
#
# Each salt.state step queues behind a state run already going on its minions (a
# reaction of the reactor, an operator's highstate) instead of failing on it.
{%- from "pgha/map.jinja" import pgha %}
{%- set postgres = pgha.postgres_members %}
{%- set haproxy = pgha.haproxy_members %}
{%- set bootstrap = pgha.bootstrap_node %}
{%- set replicas = postgres | reject("equalto", bootstrap) | list %}
{#- frontend hetzner: the master manages the balancer, with the hcloud library. #}
{%- set hcloud_loaded = pgha.frontend == "hetzner" and "hcloud_lb.pgha_spec" in salt %}

# 1. The pillar, before any node is touched.
pgha-orch-deploy-validate:
  pgha.validated:
    - name: pgha
    - failhard: True

# pgha's modules (patroni, etcd3, pgha) on every node, for the checks below.
pgha-orch-deploy-sync:
  salt.state:
    - queue: True
    - sls: [pgha.sync]
    - tgt: {{ (postgres + haproxy) | join(",") }}
    - tgt_type: list
    - failhard: True
    - require:
      - pgha: pgha-orch-deploy-validate

# 2. etcd on every postgres node, then 3. a quorum with a leader.
pgha-orch-deploy-etcd:
  salt.state:
    - queue: True
    - tgt: {{ postgres | join(",") }}
    - tgt_type: list
    - sls: [pgha.etcd]
    - failhard: True
    - require:
      - salt: pgha-orch-deploy-sync

pgha-orch-deploy-etcd-quorum:
  salt.state:
    - queue: True
    - tgt: {{ bootstrap }}
    # With quorum, etcd's users and roles (pgha:etcd:auth) before Patroni logs in.
    - sls: [pgha.check.etcd, pgha.etcd.auth]
    - failhard: True
    - require:
      - salt: pgha-orch-deploy-etcd

# 4. PostgreSQL and Patroni on one node first: it runs initdb and takes the leader key.
pgha-orch-deploy-bootstrap:
  salt.state:
    - queue: True
    - tgt: {{ bootstrap }}
    - sls: [pgha.postgres, pgha.patroni]
    - failhard: True
    - require:
      - salt: pgha-orch-deploy-etcd-quorum

pgha-orch-deploy-leader:
  salt.state:
    - queue: True
    - tgt: {{ bootstrap }}
    - sls: [pgha.check.leader]
    - failhard: True
    - require:
      - salt: pgha-orch-deploy-bootstrap

{%- if replicas %}
# 5. The other nodes clone from the leader; wait until every one of them streams.
pgha-orch-deploy-replicas:
  salt.state:
    - queue: True
    - tgt: {{ replicas | join(",") }}
    - tgt_type: list
    - sls: [pgha.postgres, pgha.patroni]
    - failhard: True
    - require:
      - salt: pgha-orch-deploy-leader
{%- endif %}

pgha-orch-deploy-streaming:
  salt.state:
    - queue: True
    - tgt: {{ bootstrap }}
    - sls: [pgha.check.replicas]
    - failhard: True
    - require:
      - salt: pgha-orch-deploy-leader

# Losing one node must never cost both elections at once: etcd's leader goes elsewhere.
pgha-orch-deploy-etcd-leader:
  salt.state:
    - queue: True
    - tgt: {{ bootstrap }}
    - sls: [pgha.etcd.leader]
    - failhard: True
    - require:
      - salt: pgha-orch-deploy-streaming

{%- if haproxy %}
# 6. HAProxy, then the front end that points at it.
pgha-orch-deploy-haproxy:
  salt.state:
    - queue: True
    - tgt: {{ haproxy | join(",") }}
    - tgt_type: list
    - sls: [pgha.haproxy]
    - failhard: True
    - require:
      - salt: pgha-orch-deploy-streaming

{%-   if pgha.frontend == "keepalived" %}
pgha-orch-deploy-frontend:
  salt.state:
    - queue: True
    - tgt: {{ haproxy | join(",") }}
    - tgt_type: list
    - sls: [pgha.keepalived]
    - failhard: True
    - require:
      - salt: pgha-orch-deploy-haproxy
{%-   elif pgha.frontend == "hetzner" and not hcloud_loaded %}
pgha-orch-deploy-frontend:
  test.fail_without_changes:
    - comment: >-
        frontend hetzner: the hcloud_lb module cannot load on the master; install the
        hcloud library into the salt-master's Python (requirements.txt pins it)
    - failhard: True
    - require:
      - salt: pgha-orch-deploy-haproxy
{%-   elif pgha.frontend == "hetzner" %}
{#-   The cloud load balancer is managed from here, the master: only it holds the token. #}
{%-     set lb = salt["hcloud_lb.pgha_spec"]() %}
pgha-orch-deploy-frontend:
  hcloud_lb.present:
{%-     for key, value in lb | dictsort %}
    - {{ key }}: {{ value | json }}
{%-     endfor %}
    - failhard: True
    - require:
      - salt: pgha-orch-deploy-haproxy

pgha-orch-deploy-frontend-healthy:
  hcloud_lb.targets_healthy:
    - name: {{ lb.name }}
    - timeout: {{ pgha.hetzner.healthy_timeout }}
    - failhard: True
    - require:
      - hcloud_lb: pgha-orch-deploy-frontend
{%-   endif %}

# 7. A client's view: write on 5432, read the same rows from a replica on 5433.
pgha-orch-deploy-end-to-end:
  pgha.end_to_end:
    - name: through the front end
    - timeout: 90
    - failhard: True
    - require:
      - salt: pgha-orch-deploy-haproxy
{%-   if hcloud_loaded %}
      - hcloud_lb: pgha-orch-deploy-frontend-healthy
{%-   endif %}
{%- endif %}

# Self-healing: the beacons the reactor listens to (pgha:heal).
pgha-orch-deploy-beacons:
  salt.state:
    - queue: True
    - tgt: {{ (postgres + haproxy) | join(",") }}
    - tgt_type: list
    - sls: [pgha.beacons]
    - require:
      - salt: pgha-orch-deploy-streaming
{%- if haproxy %}
      - pgha: pgha-orch-deploy-end-to-end
{%- endif %}
