# -*- coding: utf-8 -*-
# vim: ft=sls
# Patroni's dynamic configuration (in etcd, shared by every member) matches the pillar's
# pgha:patroni:dcs (with pgha:backup's archiving, map.jinja's patroni_dcs). Drift made with `patronictl edit-config` is patched back; a parameter
# that needs a restart is reported pending, never restarted (orch.rolling_restart does).
# It is shared, so one minion patches it per run: the leader's (the others report that).
{%- set pgha = salt["pgha.config"](redact=False) %}

include:
  - pgha.patroni.service.running

pgha-patroni-config-dynamic-matches-pillar:
  patroni.dynamic_config:
    - name: {{ pgha.cluster.name | json }}
    - wait: {{ pgha.checks.leader_timeout }}
    - leader_only: True
    - require:
      - sls: pgha.patroni.service.running
