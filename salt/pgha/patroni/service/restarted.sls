# -*- coding: utf-8 -*-
# vim: ft=sls
# Run by orch.rolling_restart (service: true) on one member: its Patroni state, then a
# restart of the Patroni process itself, so a changed package or unit takes effect;
# Patroni restarts PostgreSQL with it. Refused on the leader (switch over first).
{%- set pgha = salt["pgha.config"](redact=False) %}

include:
  - pgha.patroni

pgha-patroni-service-restarted-restarted:
  patroni.service_restarted:
    - name: {{ pgha.id | json }}
    - timeout: {{ pgha.checks.replicas_timeout }}
    - require:
      - sls: pgha.patroni
