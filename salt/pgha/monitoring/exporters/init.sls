# -*- coding: utf-8 -*-
# vim: ft=sls
# The exporters of this node: the node exporter everywhere (with pgha's own metrics in
# its textfile directory), PostgreSQL's on the postgres nodes. Patroni, etcd and HAProxy
# serve their own metrics (pgha.patroni, pgha.etcd, pgha.haproxy). With TLS on, each
# serves HTTPS with the node's certificate and admits only clients with one from the CA.
{%- set pgha = salt["pgha.config"](redact=False) %}
{%- from "pgha/macros.jinja" import pkgs %}
{%- set mon = pgha.monitoring %}
{%- set postgres = pgha.id in pgha.postgres_members %}
{%- set exporters = [mon.node_exporter] + ([mon.postgres_exporter] if postgres else []) %}

include:
  - pgha.tls
{%- if postgres %}
  - pgha.monitoring.exporters.role
{%- endif %}

# ---- package ----------------------------------------------------------------------------

pgha-monitoring-exporters-package-installed:
  pkg.installed:
    - pkgs: {{ pkgs(*exporters) }}
    # Debian recommends collector timers (apt, smartmon) pgha does not use.
    - install_recommends: False

# ---- config -----------------------------------------------------------------------------
{%- if pgha.tls.enabled %}

# The exporters run as the prometheus user: it reads the node's key through the group.
pgha-monitoring-exporters-config-tls-reader:
  group.present:
    - name: {{ pgha.tls.group | json }}
    - addusers: [{{ mon.user | json }}]
    - require:
      - pkg: pgha-monitoring-exporters-package-installed
      - sls: pgha.tls

pgha-monitoring-exporters-config-web-managed:
  file.managed:
    - name: {{ mon.web_config_file | json }}
    - source: salt://pgha/monitoring/files/web.yml.jinja
    - template: jinja
    - context:
        client_auth: True
    - makedirs: True
    - user: root
    - group: {{ mon.user | json }}
    - mode: '0640'
    - require:
      - pkg: pgha-monitoring-exporters-package-installed
{%- endif %}

pgha-monitoring-exporters-config-node-defaults:
  file.managed:
    - name: {{ mon.node_exporter.defaults_file | json }}
    - source: salt://pgha/monitoring/files/node_exporter.default.jinja
    - template: jinja
    - mode: '0644'
    - require:
      - pkg: pgha-monitoring-exporters-package-installed

pgha-monitoring-exporters-config-textfile-dir:
  file.directory:
    - name: {{ mon.node_exporter.textfile_dir | json }}
    - user: root
    - group: {{ mon.user | json }}
    - mode: '0755'
    - makedirs: True
    - require:
      - pkg: pgha-monitoring-exporters-package-installed
{%- if postgres %}

# The monitoring role's password: root only (systemd reads it for the exporter).
pgha-monitoring-exporters-config-postgres-defaults:
  file.managed:
    - name: {{ mon.postgres_exporter.defaults_file | json }}
    - source: salt://pgha/monitoring/files/postgres_exporter.default.jinja
    - template: jinja
    - user: root
    - group: root
    - mode: '0600'
    - show_changes: False
    - require:
      - pkg: pgha-monitoring-exporters-package-installed
{%- endif %}

# pgha's own metrics (textfile collector): a stdlib script on a timer, its settings as
# JSON (0600: on the postgres nodes it holds the monitoring role's password).
pgha-monitoring-exporters-config-textfile-script:
  file.managed:
    - name: {{ mon.textfile_script | json }}
    - source: salt://pgha/monitoring/files/textfile_metrics.py
    - makedirs: True
    - mode: '0755'

pgha-monitoring-exporters-config-textfile-config:
  file.managed:
    - name: {{ mon.textfile_config | json }}
    - source: salt://pgha/monitoring/files/textfile_metrics.json.jinja
    - template: jinja
    - makedirs: True
    - user: root
    - group: root
    - mode: '0600'
    - show_changes: False

pgha-monitoring-exporters-config-textfile-units:
  file.managed:
    - names:
      - /etc/systemd/system/pgha-textfile-metrics.service:
        - source: salt://pgha/monitoring/files/textfile_metrics.service.jinja
      - /etc/systemd/system/pgha-textfile-metrics.timer:
        - source: salt://pgha/monitoring/files/textfile_metrics.timer.jinja
    - template: jinja
    - mode: '0644'
  module.run:
    - service.systemctl_reload: []
    - onchanges:
      - file: pgha-monitoring-exporters-config-textfile-units

# ---- service ----------------------------------------------------------------------------
{%- for exporter in exporters %}
{%-   set is_postgres = exporter.service == mon.postgres_exporter.service %}

pgha-monitoring-exporters-service-{{ exporter.service }}-running:
  service.running:
    - name: {{ exporter.service | json }}
    - enable: True
    - require:
      - pkg: pgha-monitoring-exporters-package-installed
{%-   if is_postgres %}
      - sls: pgha.monitoring.exporters.role
{%-   endif %}
    - watch:
      - file: pgha-monitoring-exporters-config-{{ "postgres" if is_postgres else "node" }}-defaults
{%-   if pgha.tls.enabled %}
      - file: pgha-monitoring-exporters-config-web-managed
      - group: pgha-monitoring-exporters-config-tls-reader
{%-   endif %}
{%- endfor %}

pgha-monitoring-exporters-service-textfile-timer-running:
  service.running:
    - name: pgha-textfile-metrics.timer
    - enable: True
    - require:
      - module: pgha-monitoring-exporters-config-textfile-units
      - file: pgha-monitoring-exporters-config-textfile-script
      - file: pgha-monitoring-exporters-config-textfile-config
      - file: pgha-monitoring-exporters-config-textfile-dir
