# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set pgha = salt["pgha.config"](redact=False) %}
{%- set watch = pgha.etcd.leader_watch %}

pgha-etcd-leader-watch-clean-path-dead:
  service.dead:
    - names:
      - pgha-etcd-leader-apart.path
      - pgha-etcd-peer-watch.timer
    - enable: False

pgha-etcd-leader-watch-clean-files-absent:
  file.absent:
    - names:
      - /etc/systemd/system/pgha-etcd-leader-apart.path
      - /etc/systemd/system/pgha-etcd-leader-apart.service
      - /etc/systemd/system/pgha-etcd-peer-watch.timer
      - /etc/systemd/system/pgha-etcd-peer-watch.service
      - /etc/tmpfiles.d/pgha-role.conf
      - {{ watch.callback }}
      - {{ watch.script }}
      - {{ watch.config_file }}
      - {{ watch.trigger_dir }}
    - require:
      - service: pgha-etcd-leader-watch-clean-path-dead
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: pgha-etcd-leader-watch-clean-files-absent
