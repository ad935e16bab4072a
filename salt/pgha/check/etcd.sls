# -*- coding: utf-8 -*-
# vim: ft=sls
# Waits for a majority of etcd members to be healthy with a leader. Changes nothing.
{%- from "pgha/map.jinja" import pgha %}

pgha-check-etcd-quorum:
  etcd3.quorum:
    - name: {{ pgha.cluster.name }}
    - timeout: {{ pgha.checks.etcd_quorum_timeout }}
