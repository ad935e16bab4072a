# -*- coding: utf-8 -*-
# vim: ft=sls
# The `roles` grain decides what a node runs; `state.highstate` converges any node.
{%- from "pgha/map.jinja" import pgha %}
base:
  '*':
    - pgha.validate
  'roles:postgres':
    - match: grain
    - pgha.etcd
    - pgha.postgres
    - pgha.patroni
  'roles:haproxy':
    - match: grain
    - pgha.haproxy
{%- if pgha.frontend == "keepalived" %}
    - pgha.keepalived
{%- endif %}
