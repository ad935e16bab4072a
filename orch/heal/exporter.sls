# -*- coding: utf-8 -*-
# vim: ft=sls
# Reaction to `pgha/alert/prometheus/ExporterDown` (firing): the exporters' state is
# applied on the member the alert names, which starts an exporter that is down and
# changes nothing on one that runs. The alert is only a hint: any minion could fire that
# tag, so the reaction takes nothing from it but a member of pgha:nodes and a job, and
# the state itself is the check. Budgets and the maintenance lock as for the beacons.
{%- from "pgha/map.jinja" import pgha %}
{%- from "orch/heal/gate.jinja" import limit_reached %}
{%- set ev = salt["pillar.get"]("event_data", {}) %}
{%- set ev = ev if ev is mapping else {} %}
{%- set member = ev.get("member") %}
{%- set job = (ev.get("labels") if ev.get("labels") is mapping else {}).get("job") %}
{%- set jobs = {"node": pgha.monitoring.node_exporter.service,
                "postgres": pgha.monitoring.postgres_exporter.service} %}
{%- set why = salt["pgha_event.heal_blocked"]("exporters") %}
{%- set known = member in pgha.nodes and (job == "node" or (job == "postgres" and member in pgha.postgres_members)) %}
{%- if why or not known or ev.get("status") != "firing" or not pgha.monitoring_ready %}

pgha-heal-exporter-skipped:
  salt.runner:
    - name: event.send
    - tag: pgha/remediation/skipped
    - data: {{ {"tag": salt["pillar.get"]("event_tag", ""), "reaction": "exporter",
                "why": why or ("not a firing ExporterDown alert for a member's node or postgres exporter: "
                               ~ (member | string) ~ "/" ~ (job | string))} | json }}
{%- else %}
{%-   set service = jobs[job] %}
{%-   set about = {"minion": member, "service": service, "action": "state.apply pgha.monitoring.exporters"} %}

pgha-heal-exporter-budget:
  pgha.remediation_allowed:
    - name: {{ ("exporter/" ~ member ~ "/" ~ job) | json }}
    - max_attempts: {{ pgha.heal.max_attempts }}
    - window: {{ pgha.heal.window }}

pgha-heal-exporter-converge:
  salt.state:
    - tgt: {{ member | json }}
    - queue: True
    - sls: [pgha.monitoring.exporters]
    - require:
      - pgha: pgha-heal-exporter-budget

pgha-heal-exporter-done:
  salt.runner:
    - name: event.send
    - tag: {{ ("pgha/remediation/exporter/" ~ member ~ "/" ~ job) | json }}
    - data: {{ dict(about, result="converged") | json }}
    - require:
      - salt: pgha-heal-exporter-converge

pgha-heal-exporter-failed:
  salt.runner:
    - name: event.send
    - tag: {{ ("pgha/remediation/exporter/" ~ member ~ "/" ~ job) | json }}
    - data: {{ dict(about, result="failed") | json }}
    - require:
      - pgha: pgha-heal-exporter-budget
    - onfail:
      - salt: pgha-heal-exporter-converge

{{ limit_reached(pgha, "exporter", "exporter", member, job, about) }}
{%- endif %}
