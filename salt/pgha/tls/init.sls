# -*- coding: utf-8 -*-
# vim: ft=sls
# The node's CA, certificate and key, from pillar (pgha:tls). The key is a secret:
# root:<group> 0640 and never shown in a diff; each component's config state puts its
# service user in the group. With pgha:tls:enabled false this does nothing.
{%- set pgha = salt["pgha.config"](redact=False) %}
{%- set tls = pgha.tls %}
{%- if tls.enabled %}

pgha-tls-group-present:
  group.present:
    - name: {{ tls.group }}
    - system: True

pgha-tls-dir-managed:
  file.directory:
    - name: {{ salt["file.dirname"](tls.key_file) }}
    - user: root
    - group: {{ tls.group }}
    - mode: '0750'
    - makedirs: True
    - require:
      - group: pgha-tls-group-present

{%-   for kind, path, contents, mode in [
        ("ca", tls.ca_file, tls.ca_cert, "0644"),
        ("cert", tls.cert_file, tls.cert, "0644"),
        ("key", tls.key_file, tls.key, "0640"),
        ("pem", tls.pem_file, (tls.cert or "") ~ (tls.key or ""), "0640")] %}

pgha-tls-{{ kind }}-file-managed:
  file.managed:
    - name: {{ path }}
    - contents: {{ contents | json }}
    - user: root
    - group: {{ tls.group }}
    - mode: '{{ mode }}'
    - show_changes: False
    - require:
      - file: pgha-tls-dir-managed
{%-   endfor %}
{%- endif %}
