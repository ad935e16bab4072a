# -*- coding: utf-8 -*-
# vim: ft=sls
# The other etcd members hold a quorum without pgha_run:member (before the etcd heal
# restarts that member). Changes nothing.
{%- set pgha = salt["pgha.config"](redact=False) %}

pgha-check-etcd-quorum-without-member:
  etcd3.quorum_without:
    - name: {{ salt["pillar.get"]("pgha_run:member") | json }}
