# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set pgha = salt["pgha.config"](redact=False) %}
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

{%- if pgha.postgres.repository == "pgdg" %}
{%-   set pgdg = pgha.postgres.pgdg %}
# PostgreSQL {{ version }} from the PostgreSQL project's apt repository (or the site's
# mirror of it), its key kept in its own keyring file, trusted for that source only.
pgha-postgres-package-install-pgdg-repo-managed:
  pkgrepo.managed:
    - name: {{ ("deb [signed-by=" ~ pgdg.keyring ~ "] " ~ pgdg.url ~ " " ~ grains["oscodename"] ~ "-pgdg main") | json }}
    - file: /etc/apt/sources.list.d/pgdg.list
    - key_url: {{ pgdg.key_url | json }}
    - aptkey: False
    - signedby: {{ pgdg.keyring | json }}
    - require_in:
      - pkg: pgha-postgres-package-install-pkg-installed
{%- endif %}

pgha-postgres-package-install-pkg-installed:
  pkg.installed:
    - pkgs: {{ pkgs(pgha.postgres) }}
    - require:
      - file: pgha-postgres-package-install-no-default-cluster

{#- A Debian cluster <version>/main, and whether it holds databases beyond the three
    initdb makes (template0, template1, postgres): then it may be someone's data. #}
{%- set cluster = version ~ "/main" %}
{%- set datadir = "$(pg_lsclusters -h " ~ version ~ " main 2>/dev/null | awk '{print $6}')" %}
{%- set exists = "test -d /etc/postgresql/" ~ cluster %}
{%- set has_data = "d=" ~ datadir ~ "; test -n \"$d\" && test \"$(find \"$d/base\" -mindepth 1 -maxdepth 1 -type d | wc -l)\" -gt 3" %}
{%- set confirmed = pgha.postgres.drop_default_cluster_with_data == cluster %}

{%- if pgha.postgres.remove_default_cluster %}
# An empty default cluster (a package install's) would hold port {{ pgha.postgres.port }}: drop it.
pgha-postgres-package-install-default-cluster-absent:
  cmd.run:
    - name: pg_dropcluster --stop {{ version }} main
    - onlyif:
      - {{ exists | json }}
{%-   if not confirmed %}
    - unless:
      - {{ has_data | json }}
{%-   endif %}
    - require:
      - pkg: pgha-postgres-package-install-pkg-installed
{%-   if not confirmed %}

# One that holds databases is someone's data: never dropped without a confirmation.
pgha-postgres-package-install-default-cluster-with-data:
  test.fail_without_changes:
    - name: >-
        Debian's cluster {{ cluster }} holds databases of its own and would hold port
        {{ pgha.postgres.port }}; pgha does not drop it. Move its data away, or set
        pgha:postgres:drop_default_cluster_with_data: "{{ cluster }}" to have it dropped
    - onlyif:
      - {{ has_data | json }}
    - require:
      - pkg: pgha-postgres-package-install-pkg-installed
{%-   endif %}
{%- else %}
pgha-postgres-package-install-default-cluster-absent:
  test.fail_without_changes:
    - name: >-
        Debian's default cluster {{ cluster }} exists and would hold port
        {{ pgha.postgres.port }}; drop it (pg_dropcluster --stop {{ version }} main) or set
        pgha:postgres:remove_default_cluster: true
    - onlyif: {{ exists | json }}
    - require:
      - pkg: pgha-postgres-package-install-pkg-installed
{%- endif %}
