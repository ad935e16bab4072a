# -*- coding: utf-8 -*-
# vim: ft=sls
# Run by orch.add_node / orch.remove_node on an existing member: etcd's runtime
# reconfiguration. Parameters come as pillar under pgha_run: (member, address, promote,
# absent).
{%- set run = salt["pillar.get"]("pgha_run", {}) %}

{%- if run.get("absent") %}
pgha-etcd-member-absent:
  etcd3.member_absent:
    - name: {{ run.member | json }}
{%- else %}
pgha-etcd-member-present:
  etcd3.member_present:
    - name: {{ run.member | json }}
    - address: {{ run.address | json }}
    - promote: {{ run.get("promote", False) | json }}
{%- endif %}
