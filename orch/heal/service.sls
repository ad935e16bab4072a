# -*- coding: utf-8 -*-
# vim: ft=sls
# Reaction to `salt/beacon/<minion>/pgha_services/<service>`: a pgha service is down on
# the minion that signed the event, and that minion's role runs the service. Applies
# that component's service state there (it starts the unit, never touches data), at
# most pgha:heal:max_attempts times per window, and says what it did.
{%- from "pgha/map.jinja" import pgha %}
{%- from "orch/heal/gate.jinja" import limit_reached, not_acting %}
{%- set tag = salt["pillar.get"]("event_tag", "") %}
{%- set ev = salt["pillar.get"]("event_data", {}) %}
{%- set gate = salt["pgha_event.gate"](tag, ev, "services") %}
{%- set components = {pgha.patroni.service: "patroni", pgha.etcd.service: "etcd",
                      pgha.haproxy.service: "haproxy", pgha.keepalived.service: "keepalived"} %}
{%- set component = components.get(ev.get("service")) if gate.act else none %}
{%- if not gate.act %}
{{ not_acting(gate, tag, "service") }}
{%- elif not component %}
pgha-heal-service-unknown:
  test.nop:
    - name: {{ ("no reaction: " ~ ev.get("service") ~ " is not a pgha service") | json }}
{%- else %}
{%-   set minion = gate.sender %}
{%-   set service = ev.get("service") %}
{%-   set about = {"minion": minion, "service": service,
                   "action": "state.apply pgha." ~ component ~ ".service.running"} %}

pgha-heal-service-budget:
  pgha.remediation_allowed:
    - name: {{ ("service/" ~ minion ~ "/" ~ service) | json }}
    - max_attempts: {{ pgha.heal.max_attempts }}
    - window: {{ pgha.heal.window }}

pgha-heal-service-converge:
  salt.state:
    - tgt: {{ minion | json }}
    # Wait for a state run already going on that minion (an operator's highstate).
    - queue: True
    - sls: {{ ["pgha." ~ component ~ ".service.running"] | json }}
    - require:
      - pgha: pgha-heal-service-budget

pgha-heal-service-done:
  salt.runner:
    - name: event.send
    - tag: {{ ("pgha/remediation/service/" ~ minion ~ "/" ~ service) | json }}
    - data: {{ dict(about, result="started") | json }}
    - require:
      - salt: pgha-heal-service-converge

pgha-heal-service-failed:
  salt.runner:
    - name: event.send
    - tag: {{ ("pgha/remediation/service/" ~ minion ~ "/" ~ service) | json }}
    - data: {{ dict(about, result="failed") | json }}
    # Only when an attempt was made: a refused one is reported as remediation_limit.
    - require:
      - pgha: pgha-heal-service-budget
    - onfail:
      - salt: pgha-heal-service-converge

{{ limit_reached(pgha, "service", "service", minion, service, about) }}
{%- endif %}
