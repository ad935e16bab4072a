# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set pgha = salt["pgha.config"](redact=False) %}

include:
  - pgha.etcd.package.install
  - pgha.tls

# The member's data. Created empty once; never wiped or re-initialised by pgha.
pgha-etcd-config-file-data-dir-managed:
  file.directory:
    - name: {{ pgha.etcd.data_dir }}
    - user: {{ pgha.etcd.user }}
    - group: {{ pgha.etcd.user }}
    - mode: '0700'
    - makedirs: True
    - require:
      - sls: pgha.etcd.package.install

# Runtime settings, read by Debian's etcd.service (EnvironmentFile=/etc/default/etcd).
pgha-etcd-config-file-env-managed:
  file.managed:
    - name: {{ pgha.etcd.env_file }}
    - source: salt://pgha/etcd/files/etcd.env.jinja
    - template: jinja
    - user: root
    - group: {{ pgha.etcd.user }}
    - mode: '0640'
    - require:
      - sls: pgha.etcd.package.install

# Bootstrap-only settings (the initial cluster). etcd ignores them once it has data, so
# the service does not watch this file: adding a member to pillar must not restart the
# running ones.
pgha-etcd-config-file-bootstrap-managed:
  file.managed:
    - name: {{ pgha.etcd.bootstrap_env_file }}
    - source: salt://pgha/etcd/files/bootstrap.env.jinja
    - template: jinja
    - user: root
    - group: {{ pgha.etcd.user }}
    - mode: '0640'
    - makedirs: True
    - require:
      - sls: pgha.etcd.package.install

pgha-etcd-config-file-unit-dropin-managed:
  file.managed:
    - name: /etc/systemd/system/{{ pgha.etcd.service }}.service.d/pgha.conf
    - source: salt://pgha/etcd/files/dropin.conf.jinja
    - template: jinja
    - mode: '0644'
    - makedirs: True

pgha-etcd-config-file-daemon-reload:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: pgha-etcd-config-file-unit-dropin-managed

{%- if pgha.tls.enabled %}

# The service's user may read the node's TLS key (pgha.tls).
pgha-etcd-config-file-tls-reader:
  group.present:
    - name: {{ pgha.tls.group }}
    - addusers: [{{ pgha.etcd.user }}]
    - require:
      - sls: pgha.etcd.package.install
      - sls: pgha.tls
{%- endif %}
