# -*- coding: utf-8 -*-
# vim: ft=sls
# Remove pgha's beacons from this node.
{%- for beacon in ("pgha_services", "pgha_patroni", "pgha_etcd", "pgha_backup") %}
pgha-beacons-clean-{{ beacon }}-absent:
  beacon.absent:
    - name: {{ beacon }}
    - save: True
{%- endfor %}
