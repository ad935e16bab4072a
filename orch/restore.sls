# -*- coding: utf-8 -*-
# vim: ft=sls
#
# salt-run state.orchestrate orch.restore pillar='{"target_time": "2026-12-01 20:15:00+00", "confirm": "<cluster name>"}'
#   or target_lsn: "0/3000060", target_name: "<restore point>", or none: the end of the archive
#   optional target_timeline: current, latest (the default) or a number
#
# Point-in-time recovery of the whole cluster. Refused, before anything is touched,
# without confirm equal to the cluster's name, with a malformed target, with the
# repository unreadable (down, or the pillar's passphrase wrong), or when no backup ended
# before the target. Then, holding the maintenance lock: the primary archives its
# current WAL, Patroni stops on every member, `patronictl remove` clears the cluster
# from etcd, every data directory is moved aside (kept, never deleted), the bootstrap
# node restores to the target through Patroni's custom bootstrap and promotes there, a
# full backup is taken on the new timeline, the other members are rebuilt by Patroni
# from it, and the run ends with the end-to-end check through the front address. Patroni
# takes the leader key itself; pgha never writes one.
{%- from "pgha/map.jinja" import pgha %}
{%- from "orch/macros.jinja" import step, members_answer, maintenance %}
{%- set postgres = pgha.postgres_members %}
{%- set bootstrap = pgha.bootstrap_node %}
{%- set replicas = postgres | reject("equalto", bootstrap) | list %}
{#- Only what the operator passed: pillar.get gives "" for a key that is not there. #}
{%- set run = {} %}
{%- for key in ["confirm", "target_time", "target_lsn", "target_name", "target_timeline"] %}
{%-   set value = salt["pillar.get"](key, none) %}
{%-   if value is not none and value != "" %}
{%-     do run.update({key: value}) %}
{%-   endif %}
{%- endfor %}
{#- `enabled` marks a restore even when no target is given (the end of the archive). #}
{%- set target = {"enabled": true} %}
{%- for key in ["target_time", "target_lsn", "target_name", "target_timeline"] if key in run %}
{%-   do target.update({key: run[key] | string}) %}
{%- endfor %}
{%- set stamp = salt["status.time"]("%Y%m%d%H%M%S") %}

pgha-orch-restore-validate:
  pgha.validated:
    - name: pgha
    - failhard: True

{%- if not pgha.backup_ready %}
pgha-orch-restore-enabled:
  test.fail_without_changes:
    - comment: "backups are off: set pgha:backup:enabled and give one node roles: [backup]"
    - failhard: True
{%- else %}

# 1. Before anything changes: confirmation, target, repository, a backup old enough;
# asked on the backup node (with the pillar's passphrase) and on the bootstrap node,
# which restores and must reach the repository over TLS.
{{ step("pgha-orch-restore-possible", [pgha.backup_node, bootstrap], ["pgha.restore.possible"],
        "pgha:pgha-orch-restore-validate", pillar={"pgha_run": run}, failhard=true) }}

# Every member answers before any is stopped: one out of reach would miss the stop, and
# the run would end with the others down and nothing restored.
{{ members_answer("pgha-orch-restore-members-answer", postgres, "pgha-orch-restore-possible") }}

{{ maintenance("pgha-orch-restore", "orch.restore", 4 * 3600) }}

# 2. What the running primary has written so far goes to the archive first (a target
# at "now" needs it). A cluster that is down has nothing to add: not a failure.
{{ step("pgha-orch-restore-archived", [pgha.backup_node], ["pgha.restore.archived"], "pgha:pgha-orch-restore-maintenance") }}

# 3. Patroni stopped everywhere, the cluster cleared from etcd, the data moved aside.
{{ step("pgha-orch-restore-stopped", postgres, ["pgha.restore.stopped"],
        ["pgha-orch-restore-archived", "pgha-orch-restore-possible", "pgha-orch-restore-members-answer"]) }}
{{ step("pgha-orch-restore-removed", [bootstrap], ["pgha.restore.removed"], "pgha-orch-restore-stopped") }}
{{ step("pgha-orch-restore-aside", postgres, ["pgha.restore.aside"], "pgha-orch-restore-removed",
        pillar={"pgha_run": {"stamp": stamp}}) }}

# 4. The bootstrap node restores to the target and promotes; Patroni takes the leader key.
{#- Restoring and replaying WAL up to the target takes longer than any leader check. #}
{%-   set restoring = {"pgha": {"checks": {"leader_timeout": pgha.backup.restore_timeout}}} %}
{{ step("pgha-orch-restore-bootstrap", [bootstrap], ["pgha.patroni"], "pgha-orch-restore-aside",
        pillar=dict(restoring, pgha_run={"restore": target})) }}
{{ step("pgha-orch-restore-leader", [bootstrap], ["pgha.check.leader"], "pgha-orch-restore-bootstrap",
        pillar=restoring) }}

# If the restore failed: every member stays stopped and disabled, with self-healing off
# on them (their beacons disabled until a highstate or `beacons.enable`), and the
# custom bootstrap leaves the configuration (a later start would replay it). Otherwise
# a member started again, by a reboot or by a reaction once the lock is released, would
# find no cluster in etcd and an empty data directory, and bootstrap an empty cluster
# that the front end would route writes to. The data moved aside stays where it is.
pgha-orch-restore-stopped-on-failure:
  salt.state:
    - tgt: {{ postgres | join(",") | json }}
    - tgt_type: list
    - sls: [pgha.restore.stopped, pgha.patroni.config.file]
    - queue: True
    - onfail_any:
      - salt: pgha-orch-restore-bootstrap
      - salt: pgha-orch-restore-leader

pgha-orch-restore-healing-off-on-failure:
  salt.function:
    - name: beacons.disable
    - tgt: {{ postgres | join(",") | json }}
    - tgt_type: list
    - onfail_any:
      - salt: pgha-orch-restore-bootstrap
      - salt: pgha-orch-restore-leader
# Its configuration without the restore again (used only at a bootstrap, but it must
# never run a second time).
{{ step("pgha-orch-restore-config", [bootstrap], ["pgha.patroni"], "pgha-orch-restore-leader") }}

# 5. A full backup on the new timeline, then the others are rebuilt from it.
pgha-orch-restore-new-backup:
  salt.function:
    - name: pgbackrest.backup
    - tgt: {{ pgha.backup_node | json }}
    - kwarg:
        type: full
    - timeout: 7200
    - require:
      - salt: pgha-orch-restore-config
{%-   if replicas %}
{{ step("pgha-orch-restore-replicas", replicas, ["pgha.patroni"], "salt:pgha-orch-restore-new-backup") }}
{%-   endif %}
{{ step("pgha-orch-restore-streaming", [bootstrap], ["pgha.check.replicas"],
        "pgha-orch-restore-replicas" if replicas else "salt:pgha-orch-restore-new-backup") }}

{#- The cluster was bootstrapped anew: postgres_exporter's login role is made again on
    its primary (it replicates from there). #}
{%- if pgha.monitoring_ready %}
{{ step("pgha-orch-restore-monitoring-role", [bootstrap], ["pgha.monitoring.exporters.role"],
        "pgha-orch-restore-streaming") }}
{%- endif %}

{%-   if pgha.haproxy_members %}
{{ step("pgha-orch-restore-routing", pgha.haproxy_members, ["pgha.check.routing"], "pgha-orch-restore-streaming") }}

pgha-orch-restore-end-to-end:
  pgha.end_to_end:
    - name: through the front end
    - timeout: 90
    - require:
      - salt: pgha-orch-restore-routing
{%-   endif %}
{%- endif %}
