# -*- coding: utf-8 -*-
# vim: ft=sls
#
# salt-run state.orchestrate orch.deploy
#
# The rollout, from bare nodes to a checked cluster. Each step starts only after the
# check before it passed; the first failure stops the run (a bad pillar before anything
# is touched; later steps chain by require) and its comment says what failed and on
# which minion. Re-running it on a healthy cluster changes and restarts nothing. It
# holds the maintenance lock while it runs (orch/macros.jinja).
{%- from "pgha/map.jinja" import pgha %}
{%- from "orch/macros.jinja" import step, maintenance %}
{%- set postgres = pgha.postgres_members %}
{%- set haproxy = pgha.haproxy_members %}
{%- set bootstrap = pgha.bootstrap_node %}
{%- set replicas = postgres | reject("equalto", bootstrap) | list %}
{%- set backup = pgha.backup_members if pgha.backup_ready else [] %}
{%- set monitor = pgha.monitor_members if pgha.monitoring_ready else [] %}
{%- set everyone = (postgres + haproxy + backup + monitor) | unique | list %}
{#- frontend hetzner: the master manages the balancer, with the hcloud library. #}
{%- set hcloud_loaded = pgha.frontend == "hetzner" and "hcloud_lb.pgha_spec" in salt %}

# 1. The pillar, before any node is touched.
pgha-orch-deploy-validate:
  pgha.validated:
    - name: pgha
    - failhard: True

{{ maintenance("pgha-orch-deploy", "orch.deploy", 1800) }}

# pgha's modules (patroni, etcd3, pgha) on every node, for the checks below.
{{ step("pgha-orch-deploy-sync", everyone, ["pgha.sync"], "pgha:pgha-orch-deploy-maintenance") }}

# 2. etcd on every postgres node, then 3. a quorum with a leader; etcd's users and
# roles (pgha:etcd:auth) once quorum exists, before Patroni logs in.
{{ step("pgha-orch-deploy-etcd", postgres, ["pgha.etcd"], "pgha-orch-deploy-sync") }}
{{ step("pgha-orch-deploy-etcd-quorum", [bootstrap], ["pgha.check.etcd", "pgha.etcd.auth"], "pgha-orch-deploy-etcd") }}

{%- set ns = namespace(before_bootstrap="pgha-orch-deploy-etcd-quorum", before_streaming=none,
                       before_beacons=none) %}
{%- if backup %}

# pgBackRest before the first initdb: PostgreSQL archives through it from the start
# (pushes fail, and WAL waits in pg_wal, until the stanza exists below).
{{ step("pgha-orch-deploy-pgbackrest", backup + postgres, ["pgha.pgbackrest"], "pgha-orch-deploy-etcd-quorum") }}
{%-   set ns.before_bootstrap = "pgha-orch-deploy-pgbackrest" %}
{%- endif %}

# 4. PostgreSQL and Patroni on one node first: it runs initdb and takes the leader key.
{{ step("pgha-orch-deploy-bootstrap", [bootstrap], ["pgha.postgres", "pgha.patroni"], ns.before_bootstrap) }}
{{ step("pgha-orch-deploy-leader", [bootstrap], ["pgha.check.leader"], "pgha-orch-deploy-bootstrap") }}
{%- set ns.before_streaming = "pgha-orch-deploy-leader" %}
{%- if replicas %}

# 5. The other nodes clone from the leader; wait until every one of them streams.
{{ step("pgha-orch-deploy-replicas", replicas, ["pgha.postgres", "pgha.patroni"], "pgha-orch-deploy-leader") }}
{%-   set ns.before_streaming = "pgha-orch-deploy-replicas" %}
{%- endif %}
{{ step("pgha-orch-deploy-streaming", [bootstrap], ["pgha.check.replicas"], ns.before_streaming) }}

# Losing one node must never cost both elections at once: etcd's leader goes elsewhere.
{{ step("pgha-orch-deploy-etcd-leader", [bootstrap], ["pgha.etcd.leader"], "pgha-orch-deploy-streaming") }}
{%- if backup %}

# The stanza in the repository, and the backup timers, once there is a primary.
{{ step("pgha-orch-deploy-backup", backup, ["pgha.pgbackrest.stanza", "pgha.pgbackrest.schedule"], "pgha-orch-deploy-streaming") }}
{%- endif %}

{%- if haproxy %}
# 6. HAProxy, then the front end that points at it.
{{ step("pgha-orch-deploy-haproxy", haproxy, ["pgha.haproxy"], "pgha-orch-deploy-etcd-leader") }}

{%-   if pgha.frontend == "keepalived" %}
{{ step("pgha-orch-deploy-frontend", haproxy, ["pgha.keepalived"], "pgha-orch-deploy-haproxy") }}
{%-   elif pgha.frontend == "hetzner" and not hcloud_loaded %}
pgha-orch-deploy-frontend:
  test.fail_without_changes:
    - comment: >-
        frontend hetzner: the hcloud_lb module cannot load on the master; install the
        hcloud library into the salt-master's Python (requirements.txt pins it)
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
    - require:
      - salt: pgha-orch-deploy-haproxy

pgha-orch-deploy-frontend-healthy:
  hcloud_lb.targets_healthy:
    - name: {{ lb.name | json }}
    - timeout: {{ pgha.hetzner.healthy_timeout }}
    - require:
      - hcloud_lb: pgha-orch-deploy-frontend
{%-   endif %}

# 7. A client's view: write on 5432, read the same rows from a replica on 5433.
pgha-orch-deploy-end-to-end:
  pgha.end_to_end:
    - name: through the front end
    - timeout: 90
    - require:
{%-   if hcloud_loaded %}
      - hcloud_lb: pgha-orch-deploy-frontend-healthy
{%-   elif pgha.frontend == "hetzner" %}
      - test: pgha-orch-deploy-frontend
{%-   else %}
      - salt: pgha-orch-deploy-frontend
{%-   endif %}
{%- endif %}

{%- set ns.before_beacons = "pgha:pgha-orch-deploy-end-to-end" if haproxy else "pgha-orch-deploy-etcd-leader" %}
{%- if monitor %}

# 8. Monitoring, once there is a cluster to watch: every node's exporters (the primary
# creates the exporter's role), then Prometheus and Alertmanager, and a check that
# every scrape target is up.
{{ step("pgha-orch-deploy-exporters", everyone, ["pgha.monitoring"], ns.before_beacons) }}
{{ step("pgha-orch-deploy-monitoring", monitor, ["pgha.check.monitoring"], "pgha-orch-deploy-exporters") }}
{%-   set ns.before_beacons = "pgha-orch-deploy-monitoring" %}
{%- endif %}

# Self-healing: the beacons the reactor listens to (pgha:heal).
{{ step("pgha-orch-deploy-beacons", everyone, ["pgha.beacons"], ns.before_beacons) }}
