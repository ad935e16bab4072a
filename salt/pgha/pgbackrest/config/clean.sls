# -*- coding: utf-8 -*-
# vim: ft=sls
# The configuration, certificate, key and password file. The repository itself stays
# unless pgha:clean:remove_data is true: it may hold the last good copy.
{%- set pgha = salt["pgha.config"](redact=False) %}
{%- set b = pgha.backup %}

include:
  - pgha.pgbackrest.service.clean

{%- for kind in ["full", "diff", "incr"] %}

pgha-pgbackrest-config-clean-{{ kind }}-timer-dead:
  service.dead:
    - name: pgha-backup-{{ kind }}.timer
    - enable: False
{%- endfor %}

{%- for path in [b.config_file, b.tls.cert_file, b.tls.key_file, b.pgpass_file,
                 "/etc/systemd/system/pgha-backup@.service",
                 "/etc/systemd/system/pgha-backup-full.timer",
                 "/etc/systemd/system/pgha-backup-diff.timer",
                 "/etc/systemd/system/pgha-backup-incr.timer"]
                + ([b.repo.path] if pgha.clean.remove_data and pgha.id in pgha.backup_members else []) %}

pgha-pgbackrest-config-clean-{{ loop.index }}-absent:
  file.absent:
    - name: {{ path | json }}
    - require:
      - sls: pgha.pgbackrest.service.clean
{%- endfor %}
