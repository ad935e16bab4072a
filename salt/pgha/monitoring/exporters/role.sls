# -*- coding: utf-8 -*-
# vim: ft=sls
# postgres_exporter's login role, pg_monitor only. Roles replicate, so only the primary
# changes it (the state says so and does nothing on a replica or a stopped member).
{%- set pgha = salt["pgha.config"](redact=False) %}

pgha-monitoring-exporters-role-present:
  pgha_monitor.role_present:
    - name: {{ pgha.monitoring.postgres_exporter.username | json }}
