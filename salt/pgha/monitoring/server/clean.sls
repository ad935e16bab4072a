# -*- coding: utf-8 -*-
# vim: ft=sls
# Prometheus and Alertmanager off this node, with their configuration. The recorded
# series stay (/var/lib/prometheus) unless pgha:clean:remove_data is true.
{%- set pgha = salt["pgha.config"](redact=False) %}
{%- set mon = pgha.monitoring %}

pgha-monitoring-server-clean-service-dead:
  service.dead:
    - names:
      - {{ mon.prometheus.service | json }}
      - {{ mon.alertmanager.service | json }}
    - enable: False

pgha-monitoring-server-clean-files-absent:
  file.absent:
    - names:
      - {{ mon.prometheus.rules_file | json }}
      - {{ mon.server_web_config_file | json }}
      - {{ mon.alertmanager.webhook.token_file | json }}
      - {{ (mon.node_exporter.textfile_dir ~ "/pgha_remediation.prom") | json }}
      - {{ ("/etc/systemd/system/" ~ mon.prometheus.service ~ ".service.d/pgha.conf") | json }}
      - {{ ("/etc/systemd/system/" ~ mon.alertmanager.service ~ ".service.d/pgha.conf") | json }}
{%- if pgha.clean.remove_data %}
      - /var/lib/prometheus/metrics2
      - /var/lib/prometheus/alertmanager
{%- endif %}
    - require:
      - service: pgha-monitoring-server-clean-service-dead

pgha-monitoring-server-clean-pkg-removed:
  pkg.removed:
    - pkgs: {{ (mon.prometheus.packages + mon.alertmanager.packages) | json }}
    - require:
      - file: pgha-monitoring-server-clean-files-absent
