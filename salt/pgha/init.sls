# -*- coding: utf-8 -*-
# vim: ft=sls
# Everything this node's roles (pgha:nodes:<id>:roles in pillar) ask for:
# `state.apply pgha` converges any node.
{%- set pgha = salt["pgha.config"](redact=False) %}

include:
  - pgha.validate
{%- if pgha.id in pgha.postgres_members %}
  - pgha.etcd
  - pgha.postgres
  - pgha.pgbackrest
  - pgha.patroni
{%- endif %}
{%- if pgha.id in pgha.backup_members %}
  - pgha.pgbackrest
  - pgha.pgbackrest.stanza
  - pgha.pgbackrest.schedule
{%- endif %}
{%- if pgha.id in pgha.haproxy_members %}
  - pgha.haproxy
{%-   if pgha.frontend == "keepalived" %}
  - pgha.keepalived
{%-   endif %}
{%- endif %}
{%- if pgha.monitoring_ready %}
  - pgha.monitoring
{%- endif %}
  - pgha.beacons
