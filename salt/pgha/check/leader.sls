# -*- coding: utf-8 -*-
# vim: ft=sls
# Waits for a Patroni leader with PostgreSQL running. Changes nothing.
{%- set pgha = salt["pgha.config"](redact=False) %}

pgha-check-leader-cluster-healthy:
  patroni.cluster_healthy:
    - name: {{ pgha.cluster.name }}
    - replicas: 0
    - timeout: {{ pgha.checks.leader_timeout }}
