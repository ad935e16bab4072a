# -*- coding: utf-8 -*-
# vim: ft=sls
# Prometheus and Alertmanager on a monitor node (Debian's packages). Prometheus scrapes
# every target map.jinja derives from pgha:nodes (scrape_targets) with this node's
# client certificate, evaluates pgha's alert rules, and sends alerts to Alertmanager,
# which posts them to salt-api's webhook (pgha:monitoring:alertmanager:webhook) and to
# any receiver the pillar adds. Each file is checked by promtool or amtool before it is
# put in place.
{%- set pgha = salt["pgha.config"](redact=False) %}
{%- from "pgha/macros.jinja" import pkgs %}
{%- set mon = pgha.monitoring %}
{%- set servers = [mon.prometheus, mon.alertmanager] %}

include:
  - pgha.tls
  - pgha.monitoring.exporters

# ---- package ----------------------------------------------------------------------------
{%- for server in servers %}

# Before the package: its first start (with Debian's defaults) already restarts this way.
pgha-monitoring-server-package-{{ server.service }}-dropin:
  file.managed:
    - name: /etc/systemd/system/{{ server.service }}.service.d/pgha.conf
    - contents: |
        # Managed by Salt (pgha.monitoring): pgha:monitoring:server_restart_sec.
        [Service]
        RestartSec={{ mon.server_restart_sec }}
    - mode: '0644'
    - makedirs: True
    - require_in:
      - pkg: pgha-monitoring-server-package-installed
{%- endfor %}

pgha-monitoring-server-package-daemon-reload:
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
{%- for server in servers %}
      - file: pgha-monitoring-server-package-{{ server.service }}-dropin
{%- endfor %}
    - require_in:
      - pkg: pgha-monitoring-server-package-installed

pgha-monitoring-server-package-installed:
  pkg.installed:
    - pkgs: {{ pkgs(mon.prometheus, mon.alertmanager) }}
    - install_recommends: False

# ---- config -----------------------------------------------------------------------------
{%- if pgha.tls.enabled %}

# Prometheus' and Alertmanager's own web servers: HTTPS, no client certificate (their
# UIs are opened in a browser).
pgha-monitoring-server-config-web-managed:
  file.managed:
    - name: {{ mon.server_web_config_file | json }}
    - source: salt://pgha/monitoring/files/web.yml.jinja
    - template: jinja
    - context:
        client_auth: False
    - user: root
    - group: {{ mon.user | json }}
    - mode: '0640'
    - require:
      - pkg: pgha-monitoring-server-package-installed
{%- endif %}

pgha-monitoring-server-config-rules-managed:
  file.managed:
    - name: {{ mon.prometheus.rules_file | json }}
    - source: salt://pgha/monitoring/files/rules.yml.jinja
    - template: jinja
    - mode: '0644'
    - check_cmd: promtool check rules
    - tmp_ext: .yml
    - require:
      - pkg: pgha-monitoring-server-package-installed

pgha-monitoring-server-config-prometheus-managed:
  file.managed:
    - name: {{ mon.prometheus.config_file | json }}
    - source: salt://pgha/monitoring/files/prometheus.yml.jinja
    - template: jinja
    - user: root
    - group: {{ mon.user | json }}
    - mode: '0640'
    # --syntax-only: the certificate files are checked when Prometheus loads them.
    - check_cmd: promtool check config --syntax-only
    - tmp_ext: .yml
    - require:
      - pkg: pgha-monitoring-server-package-installed
      - file: pgha-monitoring-server-config-rules-managed

pgha-monitoring-server-config-prometheus-defaults:
  file.managed:
    - name: {{ mon.prometheus.defaults_file | json }}
    - source: salt://pgha/monitoring/files/prometheus.default.jinja
    - template: jinja
    - mode: '0644'
    - require:
      - pkg: pgha-monitoring-server-package-installed
{%- set webhook = mon.alertmanager.webhook %}
{%- if webhook.url %}

# The webhook's token: Alertmanager reads it from this file (never from its config).
pgha-monitoring-server-config-webhook-token:
  file.managed:
    - name: {{ webhook.token_file | json }}
    - contents: {{ webhook.token | string | json }}
    - user: root
    - group: {{ mon.user | json }}
    - mode: '0640'
    - show_changes: False
    - require:
      - pkg: pgha-monitoring-server-package-installed
{%- endif %}

pgha-monitoring-server-config-alertmanager-managed:
  file.managed:
    - name: {{ mon.alertmanager.config_file | json }}
    - source: salt://pgha/monitoring/files/alertmanager.yml.jinja
    - template: jinja
    - user: root
    - group: {{ mon.user | json }}
    - mode: '0640'
    - check_cmd: amtool check-config
    - tmp_ext: .yml
    - require:
      - pkg: pgha-monitoring-server-package-installed
{%- if webhook.url %}
      - file: pgha-monitoring-server-config-webhook-token
{%- endif %}

pgha-monitoring-server-config-alertmanager-defaults:
  file.managed:
    - name: {{ mon.alertmanager.defaults_file | json }}
    - source: salt://pgha/monitoring/files/alertmanager.default.jinja
    - template: jinja
    - mode: '0644'
    - require:
      - pkg: pgha-monitoring-server-package-installed

# ---- service ----------------------------------------------------------------------------
{%- for server in servers %}

# The package starts its service with Debian's defaults (Alertmanager's gossip mesh
# finds no private address on a documentation network and exits). A unit that is not
# active (failed, or between two restarts) has its start counter cleared before pgha's
# start, so systemd's start limit never refuses pgha's configuration, in place by now.
pgha-monitoring-server-service-{{ server.service }}-reset-failed:
  cmd.run:
    - name: systemctl reset-failed {{ server.service }}
    - unless: systemctl is-active --quiet {{ server.service }}
    - require:
      - pkg: pgha-monitoring-server-package-installed
{%- endfor %}

pgha-monitoring-server-service-prometheus-running:
  service.running:
    - name: {{ mon.prometheus.service | json }}
    - enable: True
    # Rules and scrape targets reload on SIGHUP (Debian's unit); flags need a restart.
    - reload: True
    - require:
      - sls: pgha.monitoring.exporters
      - cmd: pgha-monitoring-server-service-{{ mon.prometheus.service }}-reset-failed
    - watch:
      - file: pgha-monitoring-server-config-prometheus-managed
      - file: pgha-monitoring-server-config-rules-managed
{%- if pgha.tls.enabled %}
      - file: pgha-monitoring-server-config-web-managed
{%- endif %}

# A changed flag is not something SIGHUP reloads: restart for the defaults file.
pgha-monitoring-server-service-prometheus-restarted:
  module.run:
    - service.restart:
      - name: {{ mon.prometheus.service | json }}
    - require:
      - service: pgha-monitoring-server-service-prometheus-running
    - onchanges:
      - file: pgha-monitoring-server-config-prometheus-defaults

pgha-monitoring-server-service-alertmanager-running:
  service.running:
    - name: {{ mon.alertmanager.service | json }}
    - enable: True
    - require:
      - cmd: pgha-monitoring-server-service-{{ mon.alertmanager.service }}-reset-failed
    - watch:
      - file: pgha-monitoring-server-config-alertmanager-managed
      - file: pgha-monitoring-server-config-alertmanager-defaults
{%- if webhook.url %}
      - file: pgha-monitoring-server-config-webhook-token
{%- endif %}
{%- if pgha.tls.enabled %}
      - file: pgha-monitoring-server-config-web-managed
{%- endif %}
