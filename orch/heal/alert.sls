# -*- coding: utf-8 -*-
# vim: ft=sls
# Reaction to `salt/netapi/hook/pgha/alert` (reactor/alert.sls): an Alertmanager webhook
# post. With the right token, one pgha/alert/prometheus/<alertname> event per alert
# (status firing or resolved, the member it names); otherwise pgha/alert/rejected_webhook
# and nothing else. An alert event decides nothing by itself: each reaction to one
# checks the real service first, under the same budgets and lock as the beacons'.
{%- set verdict = salt["pgha_event.webhook"](salt["pillar.get"]("auth_sha256", ""),
                                             salt["pillar.get"]("post", {})) %}
{%- if not verdict.trusted %}

pgha-heal-alert-rejected:
  salt.runner:
    - name: event.send
    - tag: pgha/alert/rejected_webhook
    - data: {{ {"problems": verdict.problems} | json }}
{%- else %}
{%-   for alert in verdict.alerts %}

pgha-heal-alert-{{ loop.index }}:
  salt.runner:
    - name: event.send
    - tag: {{ ("pgha/alert/prometheus/" ~ alert.name) | json }}
    - data: {{ alert | json }}
{%-   else %}

pgha-heal-alert-none:
  test.nop:
    - name: the post held no alert
{%-   endfor %}
{%- endif %}
