# -*- coding: utf-8 -*-
# vim: ft=sls
# On a monitor node: waits until Prometheus scrapes every target pgha:nodes derives.
# Changes nothing.
{%- set pgha = salt["pgha.config"](redact=False) %}

pgha-check-monitoring-targets-up:
  pgha_monitor.targets_up:
    - name: prometheus
    - timeout: {{ pgha.checks.monitoring_timeout }}
