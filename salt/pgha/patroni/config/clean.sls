# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set pgha = salt["pgha.config"](redact=False) %}

include:
  - pgha.patroni.service.clean

pgha-patroni-config-clean-files-absent:
  file.absent:
    - names:
      - {{ pgha.patroni.config_file }}
      - /usr/local/sbin/pgha-patroni-validate
      - /etc/systemd/system/{{ pgha.patroni.service }}.service.d/pgha.conf
    - require:
      - sls: pgha.patroni.service.clean
