# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set pgha = salt["pgha.config"](redact=False) %}

include:
  - pgha.haproxy.package.install
  - pgha.tls

# Validated with `haproxy -c` before it replaces the running config. Holds the stats
# password: 0640 root:haproxy, no diff shown.
pgha-haproxy-config-file-file-managed:
  file.managed:
    - name: {{ pgha.haproxy.config_file }}
    - source: salt://pgha/haproxy/files/haproxy.cfg.jinja
    - template: jinja
    - user: root
    - group: haproxy
    - mode: '0640'
    - show_changes: False
    - check_cmd: /usr/sbin/haproxy -c -q -f
    - require:
      - sls: pgha.haproxy.package.install

{%- if pgha.tls.enabled %}

# The service's user may read the node's TLS key (pgha.tls).
pgha-haproxy-config-file-tls-reader:
  group.present:
    - name: {{ pgha.tls.group }}
    - addusers: [haproxy]
    - require:
      - sls: pgha.haproxy.package.install
      - sls: pgha.tls
{%- endif %}
