# -*- coding: utf-8 -*-
# vim: ft=sls
# Remove pgha from this node, in the reverse order of the rollout. Data directories stay
# unless pgha:clean:remove_data is true.
{%- set roles = grains.get("roles", []) %}

include:
  - pgha.beacons.clean
{%- if "haproxy" in roles %}
  - pgha.keepalived.clean
  - pgha.haproxy.clean
{%- endif %}
{%- if "postgres" in roles %}
  - pgha.patroni.clean
  - pgha.postgres.clean
  - pgha.etcd.clean
  - pgha.tls.clean
{%- endif %}
