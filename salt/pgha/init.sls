# -*- coding: utf-8 -*-
# vim: ft=sls
# Everything this node's `roles` grain asks for: `state.apply pgha` converges any node.
{%- from "pgha/map.jinja" import pgha %}
{%- set roles = grains.get("roles", []) %}

include:
  - pgha.validate
{%- if "postgres" in roles %}
  - pgha.etcd
  - pgha.postgres
  - pgha.patroni
{%- endif %}
{%- if "haproxy" in roles %}
  - pgha.haproxy
{%-   if pgha.frontend == "keepalived" %}
  - pgha.keepalived
{%-   endif %}
{%- endif %}
  - pgha.beacons
