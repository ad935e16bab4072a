# -*- coding: utf-8 -*-
# vim: ft=sls
# Roles come from pillar (pgha:nodes:<id>:roles), through map.jinja's member lists:
# `state.highstate` converges any node. The pillar is validated first; the self-healing
# beacons come last, once the services they watch exist.
{%- from "pgha/map.jinja" import pgha %}
base:
  '*':
    - pgha.validate
{%- if pgha.postgres_members %}
  {{ pgha.postgres_members | join(",") | json }}:
    - match: list
    - pgha.etcd
    - pgha.etcd.auth
    - pgha.postgres
    - pgha.pgbackrest
    - pgha.patroni
    - pgha.beacons
{%- endif %}
{%- if pgha.backup_members %}
  {{ pgha.backup_members | join(",") | json }}:
    - match: list
    - pgha.pgbackrest
    - pgha.pgbackrest.stanza
    - pgha.pgbackrest.schedule
    - pgha.beacons
{%- endif %}
{%- if pgha.haproxy_members %}
  {{ pgha.haproxy_members | join(",") | json }}:
    - match: list
    - pgha.haproxy
{%-   if pgha.frontend == "keepalived" %}
    - pgha.keepalived
{%-   endif %}
    - pgha.beacons
{%- endif %}
{%- if pgha.monitoring_ready %}
{%-   set watched = (pgha.postgres_members + pgha.haproxy_members + pgha.backup_members + pgha.monitor_members) | unique | list %}
  # Every node's exporters; Prometheus and Alertmanager on the monitor nodes.
  {{ watched | join(",") | json }}:
    - match: list
    - pgha.monitoring
{%- endif %}
