# -*- coding: utf-8 -*-
# vim: ft=sls
# The exporters and pgha's textfile metrics off this node. (The monitoring role stays
# in PostgreSQL with the cluster's data: it holds nothing.)
{%- set pgha = salt["pgha.config"](redact=False) %}
{%- set mon = pgha.monitoring %}

pgha-monitoring-exporters-clean-timer-dead:
  service.dead:
    - name: pgha-textfile-metrics.timer
    - enable: False

pgha-monitoring-exporters-clean-service-dead:
  service.dead:
    - names:
      - {{ mon.node_exporter.service | json }}
      - {{ mon.postgres_exporter.service | json }}
    - enable: False

pgha-monitoring-exporters-clean-files-absent:
  file.absent:
    - names:
      - /etc/systemd/system/pgha-textfile-metrics.service
      - /etc/systemd/system/pgha-textfile-metrics.timer
      - {{ mon.textfile_script | json }}
      - {{ mon.textfile_config | json }}
      - {{ mon.web_config_file | json }}
      - {{ mon.node_exporter.defaults_file | json }}
      - {{ mon.postgres_exporter.defaults_file | json }}
      - {{ (mon.node_exporter.textfile_dir ~ "/pgha.prom") | json }}
    - require:
      - service: pgha-monitoring-exporters-clean-timer-dead
      - service: pgha-monitoring-exporters-clean-service-dead

pgha-monitoring-exporters-clean-pkg-removed:
  pkg.removed:
    - pkgs: {{ (mon.node_exporter.packages + mon.postgres_exporter.packages) | json }}
    - require:
      - file: pgha-monitoring-exporters-clean-files-absent
