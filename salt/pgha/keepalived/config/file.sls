# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set pgha = salt["pgha.config"](redact=False) %}

include:
  - pgha.keepalived.package.install

pgha-keepalived-config-file-file-managed:
  file.managed:
    - name: {{ pgha.keepalived.config_file }}
    - source: salt://pgha/keepalived/files/keepalived.conf.jinja
    - template: jinja
    - user: root
    - group: root
    - mode: '0640'
    - check_cmd: /usr/sbin/keepalived --config-test -f
    - require:
      - sls: pgha.keepalived.package.install
