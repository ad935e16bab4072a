# -*- coding: utf-8 -*-
# vim: ft=sls
# Keep etcd's leader off the Patroni primary from the moment of a role change, without a
# round trip through the master: Patroni's on_role_change callback (as postgres) touches
# a trigger, a systemd path unit starts a root-run oneshot, and that moves etcd's
# leadership if this node holds both (pgha.etcd.leader does the same from orchestration).
# The same script, from a timer, repairs a peer status etcd leaves stale after a
# partition heals (leader_apart.py --stale-peers says how).
{%- set pgha = salt["pgha.config"](redact=False) %}
{%- set watch = pgha.etcd.leader_watch %}

include:
  # The postgres user (Patroni's callback writes the trigger as postgres).
  - pgha.postgres

pgha-etcd-leader-watch-trigger-dir:
  file.managed:
    - name: /etc/tmpfiles.d/pgha-role.conf
    - contents: |
        # Managed by Salt (pgha.etcd.leader_watch): Patroni's callback writes here.
        d {{ watch.trigger_dir }} 0750 postgres postgres -
    - mode: '0644'
    - require:
      - sls: pgha.postgres
  cmd.run:
    - name: systemd-tmpfiles --create /etc/tmpfiles.d/pgha-role.conf
    - unless: test -d {{ watch.trigger_dir | json }}
    - require:
      - file: pgha-etcd-leader-watch-trigger-dir

pgha-etcd-leader-watch-callback:
  file.managed:
    - name: {{ watch.callback }}
    - source: salt://pgha/etcd/files/role_changed.sh.jinja
    - template: jinja
    - makedirs: True
    - mode: '0755'

pgha-etcd-leader-watch-script:
  file.managed:
    - name: {{ watch.script }}
    - source: salt://pgha/etcd/files/leader_apart.py
    - makedirs: True
    - mode: '0755'

# The etcd root credentials: root only.
pgha-etcd-leader-watch-config:
  file.managed:
    - name: {{ watch.config_file }}
    - source: salt://pgha/etcd/files/leader_apart.json.jinja
    - template: jinja
    - makedirs: True
    - user: root
    - group: root
    - mode: '0600'
    - show_changes: False

pgha-etcd-leader-watch-units:
  file.managed:
    - names:
      - /etc/systemd/system/pgha-etcd-leader-apart.path:
        - source: salt://pgha/etcd/files/leader_apart.path.jinja
      - /etc/systemd/system/pgha-etcd-leader-apart.service:
        - source: salt://pgha/etcd/files/leader_apart.service.jinja
      - /etc/systemd/system/pgha-etcd-peer-watch.timer:
        - source: salt://pgha/etcd/files/peer_watch.timer.jinja
      - /etc/systemd/system/pgha-etcd-peer-watch.service:
        - source: salt://pgha/etcd/files/peer_watch.service.jinja
    - template: jinja
    - mode: '0644'
  cmd.run:
    - name: systemctl daemon-reload
    - onchanges:
      - file: pgha-etcd-leader-watch-units

pgha-etcd-leader-watch-path-running:
  service.running:
    - name: pgha-etcd-leader-apart.path
    - enable: True
    - require:
      - cmd: pgha-etcd-leader-watch-units
      - cmd: pgha-etcd-leader-watch-trigger-dir
      - file: pgha-etcd-leader-watch-script
      - file: pgha-etcd-leader-watch-config
    - watch:
      - file: pgha-etcd-leader-watch-units

pgha-etcd-peer-watch-timer-running:
  service.running:
    - name: pgha-etcd-peer-watch.timer
    - enable: True
    - require:
      - cmd: pgha-etcd-leader-watch-units
      - file: pgha-etcd-leader-watch-script
      - file: pgha-etcd-leader-watch-config
    - watch:
      - file: pgha-etcd-leader-watch-units
