# -*- coding: utf-8 -*-
# vim: ft=sls
# On the backup node: one timer per backup type in pgha:backup:schedule (systemd
# OnCalendar expressions, checked by systemd-analyze before they are put in place).
# A type whose schedule is null has no timer.
{%- set pgha = salt["pgha.config"](redact=False) %}
{%- if pgha.backup_ready and pgha.id in pgha.backup_members %}

include:
  - pgha.pgbackrest

pgha-pgbackrest-schedule-unit-managed:
  file.managed:
    - name: /etc/systemd/system/pgha-backup@.service
    - source: salt://pgha/pgbackrest/files/pgha-backup@.service.jinja
    - template: jinja
    - mode: '0644'
    - require:
      - sls: pgha.pgbackrest

{%-   for kind, calendar in pgha.backup.schedule | dictsort %}
{%-     if calendar %}

pgha-pgbackrest-schedule-{{ kind }}-timer-managed:
  file.managed:
    - name: /etc/systemd/system/pgha-backup-{{ kind }}.timer
    - source: salt://pgha/pgbackrest/files/pgha-backup.timer.jinja
    - template: jinja
    - context:
        kind: {{ kind | json }}
        calendar: {{ calendar | json }}
    - mode: '0644'
    # The expression itself is checked (the file's path, appended, is ignored).
    - check_cmd: {{ ("sh -c 'systemd-analyze calendar \"$0\" >/dev/null' " ~ (calendar | quote)) | json }}
    - require:
      - file: pgha-pgbackrest-schedule-unit-managed

pgha-pgbackrest-schedule-{{ kind }}-timer-running:
  service.running:
    - name: pgha-backup-{{ kind }}.timer
    - enable: True
    - watch:
      - file: pgha-pgbackrest-schedule-{{ kind }}-timer-managed
      - file: pgha-pgbackrest-schedule-unit-managed
{%-     else %}

pgha-pgbackrest-schedule-{{ kind }}-timer-dead:
  service.dead:
    - name: pgha-backup-{{ kind }}.timer
    - enable: False

pgha-pgbackrest-schedule-{{ kind }}-timer-absent:
  file.absent:
    - name: /etc/systemd/system/pgha-backup-{{ kind }}.timer
    - require:
      - service: pgha-pgbackrest-schedule-{{ kind }}-timer-dead
{%-     endif %}
{%-   endfor %}
{%- endif %}
