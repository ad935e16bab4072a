# -*- coding: utf-8 -*-
# vim: ft=sls
# Waits for a majority of etcd members to be healthy with a leader. Changes nothing.
# With pillar pgha_run: {membership: true} (steps that add or remove a member), it also
# waits until etcd would accept a membership change: every voting member connected to
# every other one, which etcd checks and /health does not show.
{%- set pgha = salt["pgha.config"](redact=False) %}

pgha-check-etcd-quorum:
  etcd3.quorum:
    - name: {{ pgha.cluster.name | json }}
    - timeout: {{ pgha.checks.etcd_quorum_timeout }}
{%- if salt["pillar.get"]("pgha_run:membership") %}

pgha-check-etcd-membership-ready:
  etcd3.membership_ready:
    - name: {{ pgha.cluster.name | json }}
    - timeout: {{ pgha.checks.etcd_membership_timeout }}
    - require:
      - etcd3: pgha-check-etcd-quorum
{%- endif %}
