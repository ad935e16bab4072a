# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set pgha = salt["pgha.config"](redact=False) %}

include:
  - pgha.patroni.config.clean

pgha-patroni-package-clean-removed:
{%- if pgha.patroni.install_method == "deb" %}
  pkg.removed:
    - pkgs: {{ pgha.patroni.packages | json }}
{%- else %}
  file.absent:
    - names:
      - {{ pgha.patroni.pip.venv }}
      - /etc/systemd/system/{{ pgha.patroni.service }}.service
      - /usr/local/bin/patronictl
{%- endif %}
    - require:
      - sls: pgha.patroni.config.clean
