# -*- coding: utf-8 -*-
# vim: ft=sls
# Run by orch.heal.replica on one postgres node. Parameters come as pillar under
# pgha_run: (member).
{%- from "pgha/map.jinja" import pgha %}

pgha-reinit-reinitialized:
  patroni.reinitialized:
    - name: {{ salt["pillar.get"]("pgha_run:member") }}
    - timeout: {{ pgha.checks.replicas_timeout * 2 }}
