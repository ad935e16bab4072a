# -*- coding: utf-8 -*-
# vim: ft=sls
# pgbackrest.conf from pillar, the node's pgBackRest certificate (CN = its minion id)
# and key, and on the postgres nodes the superuser's password file that pgBackRest's
# local connection to PostgreSQL reads. Everything secret is 0600 or 0640.
{%- set pgha = salt["pgha.config"](redact=False) %}
{%- set b = pgha.backup %}
{%- if pgha.backup_ready %}
{%-   set repo_host = pgha.id in pgha.backup_members %}

include:
  - pgha.tls
  - pgha.pgbackrest.package.install

# pgBackRest runs as postgres (Debian's unit): it reads the TLS key through the group.
pgha-pgbackrest-config-file-tls-reader:
  group.present:
    - name: {{ pgha.tls.group }}
    - addusers: [postgres]
    - require:
      - sls: pgha.pgbackrest.package.install
      - sls: pgha.tls

{%-   for kind, path, contents, mode in [("cert", b.tls.cert_file, b.tls.cert, "0644"),
                                         ("key", b.tls.key_file, b.tls.key, "0640")] %}

pgha-pgbackrest-config-file-tls-{{ kind }}-managed:
  file.managed:
    - name: {{ path | json }}
    - contents: {{ contents | json }}
    - user: root
    - group: {{ pgha.tls.group }}
    - mode: '{{ mode }}'
    - show_changes: False
    - require:
      - group: pgha-pgbackrest-config-file-tls-reader
{%-   endfor %}

{%-   for path in ([b.repo.path] if repo_host else []) + [b.log_path, b.spool_path] %}

pgha-pgbackrest-config-file-dir-{{ loop.index }}:
  file.directory:
    - name: {{ path | json }}
    - user: postgres
    - group: postgres
    - mode: '0750'
    - makedirs: True
    - require:
      - sls: pgha.pgbackrest.package.install
{%-   endfor %}

pgha-pgbackrest-config-file-managed:
  file.managed:
    - name: {{ b.config_file | json }}
    - source: salt://pgha/pgbackrest/files/pgbackrest.conf.jinja
    - template: jinja
    - user: root
    - group: postgres
    - mode: '0640'
    # The repository host's copy holds the passphrase.
    - show_changes: {{ not repo_host }}
    - require:
      - sls: pgha.pgbackrest.package.install
{%-   if not repo_host %}

# pgBackRest connects to the local PostgreSQL as the superuser over the socket
# (pg_hba: scram-sha-256): libpq reads the password from the postgres user's ~/.pgpass.
pgha-pgbackrest-config-file-pgpass-managed:
  file.managed:
    - name: {{ b.pgpass_file | json }}
    - contents: {{ ("*:" ~ pgha.postgres.port ~ ":*:" ~ pgha.patroni.superuser.username ~ ":"
                    ~ (pgha.patroni.superuser.password | string | replace("\\", "\\\\") | replace(":", "\\:")))
                   | json }}
    - user: postgres
    - group: postgres
    - mode: '0600'
    - show_changes: False
    - require:
      - sls: pgha.pgbackrest.package.install
{%-   endif %}
{%- endif %}
