# -*- coding: utf-8 -*-
# vim: ft=sls
# Keep etcd's Raft leader off the Patroni primary's node (run by the orchestrations and
# the role-change reaction, on one node at a time; not part of highstate, where every
# member would race to move it).
{%- set pgha = salt["pgha.config"](redact=False) %}

pgha-etcd-leader-apart-from-primary:
  etcd3.leader_apart_from_primary:
    - name: {{ pgha.cluster.name }}
