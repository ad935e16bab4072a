# -*- coding: utf-8 -*-
# vim: ft=sls
# Waits until every other postgres node streams from the leader within the lag bound.
# Changes nothing.
{%- set pgha = salt["pgha.config"](redact=False) %}

pgha-check-replicas-cluster-healthy:
  patroni.cluster_healthy:
    - name: {{ pgha.cluster.name }}
    - replicas: {{ pgha.postgres_members | length - 1 }}
    - timeout: {{ pgha.checks.replicas_timeout }}
