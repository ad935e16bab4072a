# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set pgha = salt["pgha.config"](redact=False) %}

include:
  - pgha.etcd.service.clean

pgha-etcd-config-clean-files-absent:
  file.absent:
    - names:
      - {{ pgha.etcd.env_file }}
      - {{ pgha.etcd.bootstrap_env_file }}
      - /etc/systemd/system/{{ pgha.etcd.service }}.service.d/pgha.conf
    - require:
      - sls: pgha.etcd.service.clean

{%- if pgha.clean.remove_data %}
# Only on request (pgha:clean:remove_data): a removed member's data must go before the
# node can ever join again, but losing a live member's data is never a side effect.
pgha-etcd-config-clean-data-absent:
  file.absent:
    - name: {{ pgha.etcd.data_dir }}
    - require:
      - sls: pgha.etcd.service.clean
{%- endif %}
