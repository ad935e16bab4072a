# -*- coding: utf-8 -*-
# vim: ft=sls
# Run by orch.rolling_restart on one postgres node, once per member. Run-time
# parameters come from the orchestration as pillar under pgha_run: (member, pending_only).
{%- set pgha = salt["pgha.config"](redact=False) %}
{%- set run = salt["pillar.get"]("pgha_run", {}) %}

pgha-restart-restarted:
  patroni.restarted:
    - name: {{ run.member }}
    - pending_only: {{ run.get("pending_only", True) | json }}
    - timeout: {{ pgha.checks.replicas_timeout }}
