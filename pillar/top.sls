# -*- coding: utf-8 -*-
# vim: ft=sls
# Every minion (and the master's orchestration) sees the cluster description; each
# minion gets only its role's secrets. Secrets are scoped by minion id, which the master
# authenticates, never by grains, which a minion sets for itself.
#
# lab_roles.yaml, lab_topology, lab_tls and lab_overrides live outside the checkout
# (/var/lib/pgha-lab/pillar, the second pillar root), written by pgha-lab: the minion
# ids of each role and the lab's network, nodes and VIP (both from
# lab/pgha_lab/topology.py), the lab's certificates (each minion gets only its own
# key), and the tests' changes over the lab pillar (e.g. an added node).
{%- import_yaml "lab_roles.yaml" as lab_roles %}
base:
  '*':
    - lab_topology
    - pgha
    - lab_tls
    - ignore_missing: True
{#- One entry per minion (a node may have several roles): its roles' secret files. #}
{%- set secrets = {} %}
{%- for role in ["postgres", "haproxy", "backup", "monitor"] %}
{%-   for minion in lab_roles.get(role, []) %}
{%-     do secrets.setdefault(minion, []).append("pgha_secrets." ~ role) %}
{%-   endfor %}
{%- endfor %}
{%- for minion, files in secrets | dictsort %}
  {{ minion | json }}:
    - match: list
{%-   for file in files %}
    - {{ file | json }}
{%-   endfor %}
{%- endfor %}
  # The master's own id: what its orchestrations compile (and the webhook's token,
  # which its alert reaction checks).
  lab-master:
    - pgha_secrets.postgres
    - pgha_secrets.haproxy
    - pgha_secrets.monitor
  # The tests' changes, for every minion and the master, last so that they win.
  'E@.*':
    - match: compound
    - lab_overrides
    - ignore_missing: True
