# -*- coding: utf-8 -*-
# vim: ft=sls
# Run by orch.switchover on one postgres node. Run-time parameters come from the
# orchestration as pillar under pgha_run: (candidate).
{%- set pgha = salt["pgha.config"](redact=False) %}

pgha-switchover-switched-over:
  patroni.switched_over:
    - name: {{ pgha.cluster.name }}
    - candidate: {{ salt["pillar.get"]("pgha_run:candidate") | json }}
    - timeout: {{ pgha.checks.replicas_timeout }}
