# -*- coding: utf-8 -*-
# vim: ft=sls
# The `roles` grain decides what a node runs; `state.highstate` converges any node.
# The pillar is validated first; the self-healing beacons come last, once the services
# they watch exist.
{%- from "pgha/map.jinja" import pgha %}
base:
  '*':
    - pgha.validate
  'roles:postgres':
    - match: grain
    - pgha.etcd
    - pgha.etcd.auth
    - pgha.postgres
    - pgha.patroni
    - pgha.beacons
  'roles:haproxy':
    - match: grain
    - pgha.haproxy
{%- if pgha.frontend == "keepalived" %}
    - pgha.keepalived
{%- endif %}
    - pgha.beacons
