# -*- coding: utf-8 -*-
# vim: ft=sls
# Remove pgha from this node, in the reverse order of the rollout. Data directories stay
# unless pgha:clean:remove_data is true.
{#- This node's roles in pillar, whatever its state (orch.remove_node marks it absent
    before it cleans it). #}
{%- set pgha = salt["pgha.config"](redact=False) %}
{%- set roles = pgha.this.roles %}

include:
  - pgha.beacons.clean
  - pgha.monitoring.clean
{%- if "haproxy" in roles %}
  - pgha.keepalived.clean
  - pgha.haproxy.clean
{%- endif %}
{%- if "postgres" in roles or "backup" in roles %}
  - pgha.pgbackrest.clean
{%- endif %}
{%- if "postgres" in roles %}
  - pgha.patroni.clean
  - pgha.postgres.clean
  - pgha.etcd.clean
{%- endif %}
{%- if "postgres" in roles or "backup" in roles %}
  - pgha.tls.clean
{%- endif %}
