# -*- coding: utf-8 -*-
# vim: ft=sls
# etcd authentication (pgha:etcd:auth): root for pgha's modules, and a Patroni user
# limited to Patroni's keys. Run on one member once etcd has quorum (orch.deploy does),
# before Patroni starts.
{%- set pgha = salt["pgha.config"](redact=False) %}

pgha-etcd-auth-enabled:
  etcd3.auth_enabled:
    - name: {{ pgha.cluster.name }}
