# -*- coding: utf-8 -*-
# vim: ft=sls
{%- from "pgha/map.jinja" import pgha %}
{%- from "pgha/macros.jinja" import pkgs %}
{%- set version = pgha.postgres.version %}

# postgresql-common creates and starts a <version>/main cluster on install. Patroni must
# find an empty data directory (the original deployment failed right here), so the
# packages are installed with cluster creation switched off.
pgha-postgres-package-install-no-default-cluster:
  file.managed:
    - name: /etc/postgresql-common/createcluster.d/pgha.conf
    - contents: |
        # Managed by Salt (pgha.postgres): Patroni creates the cluster, not postgresql-common.
        create_main_cluster = false
    - makedirs: True

pgha-postgres-package-install-pkg-installed:
  pkg.installed:
    - pkgs: {{ pkgs(pgha.postgres) }}
    - require:
      - file: pgha-postgres-package-install-no-default-cluster

{%- if pgha.postgres.remove_default_cluster %}
# A default cluster from before pgha (or a manual install) would hold port {{ pgha.postgres.port }}.
pgha-postgres-package-install-default-cluster-absent:
  cmd.run:
    - name: pg_dropcluster --stop {{ version }} main
    - onlyif: test -d /etc/postgresql/{{ version }}/main
    - require:
      - pkg: pgha-postgres-package-install-pkg-installed
{%- else %}
pgha-postgres-package-install-default-cluster-absent:
  test.fail_without_changes:
    - name: >-
        Debian's default cluster {{ version }}/main exists and would hold port
        {{ pgha.postgres.port }}; drop it (pg_dropcluster --stop {{ version }} main) or set
        pgha:postgres:remove_default_cluster: true
    - onlyif: test -d /etc/postgresql/{{ version }}/main
    - require:
      - pkg: pgha-postgres-package-install-pkg-installed
{%- endif %}
