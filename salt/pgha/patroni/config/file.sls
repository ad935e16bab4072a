# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set pgha = salt["pgha.config"](redact=False) %}
{%- set patroni = pgha.patroni %}

include:
  - pgha.patroni.package.install
  - pgha.tls

pgha-patroni-config-file-dir-managed:
  file.directory:
    - name: {{ salt["file.dirname"](patroni.config_file) }}
    - user: postgres
    - group: postgres
    - mode: '0750'
    - require:
      - sls: pgha.patroni.package.install

# Only the data directory's parent: Patroni's initdb creates the data directory itself,
# and nothing may be written into it before that.
pgha-patroni-config-file-data-parent-managed:
  file.directory:
    - name: {{ salt["file.dirname"](pgha.postgres.data_dir) }}
    - user: postgres
    - group: postgres
    - mode: '0755'
    - makedirs: True
    - require:
      - sls: pgha.patroni.package.install

pgha-patroni-config-file-validator-managed:
  file.managed:
    - name: /usr/local/sbin/pgha-patroni-validate
    - source: salt://pgha/patroni/files/validate.sh.jinja
    - template: jinja
    - mode: '0755'

# Holds every database password: 0600, postgres only, and never shown in a diff.
# Validated by Patroni itself before it replaces the running config.
pgha-patroni-config-file-file-managed:
  file.managed:
    - name: {{ patroni.config_file }}
    - source: salt://pgha/patroni/files/config.yml.jinja
    - template: jinja
    - user: postgres
    - group: postgres
    - mode: '0600'
    - show_changes: False
    - check_cmd: /usr/local/sbin/pgha-patroni-validate
    - require:
      - file: pgha-patroni-config-file-dir-managed
      - file: pgha-patroni-config-file-validator-managed

pgha-patroni-config-file-unit-dropin-managed:
  file.managed:
    - name: /etc/systemd/system/{{ patroni.service }}.service.d/pgha.conf
    - source: salt://pgha/patroni/files/dropin.conf.jinja
    - template: jinja
    - mode: '0644'
    - makedirs: True

pgha-patroni-config-file-daemon-reload:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: pgha-patroni-config-file-unit-dropin-managed
      - file: pgha-patroni-package-install-unit-managed

{%- if pgha.tls.enabled %}

# The service's user may read the node's TLS key (pgha.tls).
pgha-patroni-config-file-tls-reader:
  group.present:
    - name: {{ pgha.tls.group }}
    - addusers: [postgres]
    - require:
      - sls: pgha.patroni.package.install
      - sls: pgha.tls
{%- endif %}
