# -*- coding: utf-8 -*-
# vim: ft=sls
# Reaction to `salt/beacon/<minion>/pgha_services/<service>`: a pgha service is down.
# Applies that component's service state on that minion (it starts the unit, never
# touches data), at most pgha:heal:max_attempts times per window, and says what it did.
{%- from "pgha/map.jinja" import pgha %}
{%- set ev = salt["pillar.get"]("event_data", {}) %}
{%- set minion = ev.get("id", "") %}
{%- set service = ev.get("service", "") %}
{%- set components = {pgha.patroni.service: "patroni", pgha.etcd.service: "etcd",
                      pgha.haproxy.service: "haproxy", pgha.keepalived.service: "keepalived"} %}
{%- set component = components.get(service) %}
{%- if pgha.heal.enabled and pgha.heal.services and component and minion %}
{%-   set about = {"minion": minion, "service": service,
                   "action": "state.apply pgha." ~ component ~ ".service.running"} %}

pgha-heal-service-budget:
  pgha.remediation_allowed:
    - name: service/{{ minion }}/{{ service }}
    - max_attempts: {{ pgha.heal.max_attempts }}
    - window: {{ pgha.heal.window }}

pgha-heal-service-converge:
  salt.state:
    - tgt: {{ minion }}
    # Wait for a state run already going on that minion (an operator's highstate).
    - queue: True
    - sls: [pgha.{{ component }}.service.running]
    - require:
      - pgha: pgha-heal-service-budget

pgha-heal-service-done:
  salt.runner:
    - name: event.send
    - tag: pgha/remediation/service/{{ minion }}/{{ service }}
    - data: {{ dict(about, result="started") | json }}
    - require:
      - salt: pgha-heal-service-converge

pgha-heal-service-failed:
  salt.runner:
    - name: event.send
    - tag: pgha/remediation/service/{{ minion }}/{{ service }}
    - data: {{ dict(about, result="failed") | json }}
    # Only when an attempt was made: a refused one is reported as remediation_limit.
    - require:
      - pgha: pgha-heal-service-budget
    - onfail:
      - salt: pgha-heal-service-converge

pgha-heal-service-limit:
  salt.runner:
    - name: event.send
    - tag: pgha/alert/remediation_limit
    - data: {{ dict(about, kind="service", max_attempts=pgha.heal.max_attempts, window=pgha.heal.window) | json }}
    - onfail:
      - pgha: pgha-heal-service-budget
{%- else %}
pgha-heal-service-nothing-to-do:
  test.nop:
    - name: "no reaction: heal enabled={{ pgha.heal.enabled and pgha.heal.services }}, service={{ service }}, minion={{ minion }}"
{%- endif %}
