# -*- coding: utf-8 -*-
# vim: ft=sls
# Monitoring (pgha:monitoring): every node's exporters, and on the monitor nodes
# Prometheus and Alertmanager. Nothing while no node has the monitor role.
{%- set pgha = salt["pgha.config"](redact=False) %}
{%- if pgha.monitoring_ready %}

include:
  - pgha.monitoring.exporters
{%-   if pgha.id in pgha.monitor_members %}
  - pgha.monitoring.server
{%-   endif %}
{%- endif %}
