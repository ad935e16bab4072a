# -*- coding: utf-8 -*-
# vim: ft=sls
#
# salt-run state.orchestrate orch.rebuild pillar='{"confirm": "<cluster name>"}'
#   [, "allow_without_backup": true]
#
# The original deployment's clean_and_init, done safely: every member's data directory
# is deleted and Patroni bootstraps an empty cluster (initdb). Refused without confirm
# equal to the cluster's name, and refused unless a backup younger than
# pgha:backup:rebuild_requires_backup_within exists (allow_without_backup: true skips
# that). Holds the maintenance lock. The new cluster has a new system identifier: the
# stanza is upgraded to it, so archiving and backups go on in the same repository.
{%- from "pgha/map.jinja" import pgha %}
{%- from "orch/macros.jinja" import step, members_answer, maintenance %}
{%- set postgres = pgha.postgres_members %}
{%- set bootstrap = pgha.bootstrap_node %}
{%- set replicas = postgres | reject("equalto", bootstrap) | list %}
{%- set run = {"confirm": salt["pillar.get"]("confirm"),
               "allow_without_backup": salt["pillar.get"]("allow_without_backup") is sameas true} %}

pgha-orch-rebuild-validate:
  pgha.validated:
    - name: pgha
    - failhard: True

{%- if pgha.backup_ready %}
{{ step("pgha-orch-rebuild-allowed", [pgha.backup_node], ["pgha.restore.rebuild_allowed"],
        "pgha:pgha-orch-rebuild-validate", pillar={"pgha_run": run}, failhard=true) }}
{%-   set ns = namespace(allowed="salt:pgha-orch-rebuild-allowed", before_replicas=none) %}
{%- elif run.confirm != pgha.cluster.name or not run.allow_without_backup %}
pgha-orch-rebuild-allowed:
  test.fail_without_changes:
    - comment: {{ ("a rebuild wipes every member's data: pass confirm=" ~ pgha.cluster.name
                   ~ " and, as backups are off here, allow_without_backup: true; nothing was changed") | json }}
    - failhard: True
{%-   set ns = namespace(allowed="test:pgha-orch-rebuild-allowed", before_replicas=none) %}
{%- else %}
{%-   set ns = namespace(allowed="pgha:pgha-orch-rebuild-validate", before_replicas=none) %}
{%- endif %}

# Every member answers before any is stopped: one out of reach would miss the stop, and
# the run would end with the others down and nothing restored.
{{ members_answer("pgha-orch-rebuild-members-answer", postgres, "pgha:pgha-orch-rebuild-validate") }}

{{ maintenance("pgha-orch-rebuild", "orch.rebuild", 4 * 3600) }}

{{ step("pgha-orch-rebuild-stopped", postgres, ["pgha.restore.stopped"],
        ["pgha:pgha-orch-rebuild-maintenance", ns.allowed, "pgha-orch-rebuild-members-answer"]) }}
{{ step("pgha-orch-rebuild-removed", [bootstrap], ["pgha.restore.removed"], "pgha-orch-rebuild-stopped") }}
{{ step("pgha-orch-rebuild-wiped", postgres, ["pgha.restore.aside"], "pgha-orch-rebuild-removed",
        pillar={"pgha_run": {"wipe": true}}) }}
{{ step("pgha-orch-rebuild-bootstrap", [bootstrap], ["pgha.patroni", "pgha.check.leader"], "pgha-orch-rebuild-wiped") }}
{%- set ns.before_replicas = "pgha-orch-rebuild-bootstrap" %}
{%- if pgha.backup_ready %}

# The stanza follows the new system identifier, and a first full backup of the new
# cluster exists before the replicas are built: they restore from the newest backup,
# which must be this cluster's, not the old one's.
pgha-orch-rebuild-stanza:
  salt.function:
    - name: pgbackrest.stanza_upgrade
    - tgt: {{ pgha.backup_node | json }}
    - require:
      - salt: pgha-orch-rebuild-bootstrap

pgha-orch-rebuild-first-backup:
  salt.function:
    - name: pgbackrest.backup
    - tgt: {{ pgha.backup_node | json }}
    - kwarg:
        type: full
    - timeout: 7200
    - require:
      - salt: pgha-orch-rebuild-stanza
{%-   set ns.before_replicas = "salt:pgha-orch-rebuild-first-backup" %}
{%- endif %}
{%- if replicas %}
{{ step("pgha-orch-rebuild-replicas", replicas, ["pgha.patroni"], ns.before_replicas) }}
{%- endif %}
{{ step("pgha-orch-rebuild-streaming", [bootstrap], ["pgha.check.replicas"],
        "pgha-orch-rebuild-replicas" if replicas else ns.before_replicas) }}
{#- The cluster was bootstrapped anew: postgres_exporter's login role is made again on
    its primary (it replicates from there). #}
{%- if pgha.monitoring_ready %}
{{ step("pgha-orch-rebuild-monitoring-role", [bootstrap], ["pgha.monitoring.exporters.role"],
        "pgha-orch-rebuild-streaming") }}
{%- endif %}

{%- if pgha.haproxy_members %}
{{ step("pgha-orch-rebuild-routing", pgha.haproxy_members, ["pgha.check.routing"], "pgha-orch-rebuild-streaming") }}

pgha-orch-rebuild-end-to-end:
  pgha.end_to_end:
    - name: through the front end
    - timeout: 90
    - require:
      - salt: pgha-orch-rebuild-routing
{%- endif %}
