# -*- coding: utf-8 -*-
# vim: ft=sls
# Run by orch.heal.replica on the failed member's own minion (it reads that member's log).
# Parameters come as pillar under pgha_run: (member; grace, default pgha:heal:reinit_grace).
{%- set pgha = salt["pgha.config"](redact=False) %}

pgha-reinit-reinitialized:
  patroni.reinitialized:
    - name: {{ salt["pillar.get"]("pgha_run:member") | json }}
    - grace: {{ salt["pillar.get"]("pgha_run:grace", pgha.heal.reinit_grace) }}
    - timeout: {{ pgha.checks.replicas_timeout * 2 }}
