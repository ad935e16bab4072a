# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set pgha = salt["pgha.config"](redact=False) %}

include:
  - pgha.patroni.service.clean

pgha-postgres-package-clean-pkg-removed:
  pkg.removed:
    - pkgs: {{ pgha.postgres.packages | json }}
    - require:
      - sls: pgha.patroni.service.clean

pgha-postgres-package-clean-createcluster-absent:
  file.absent:
    - name: /etc/postgresql-common/createcluster.d/pgha.conf
    - require:
      - pkg: pgha-postgres-package-clean-pkg-removed

{%- if pgha.clean.remove_data %}
pgha-postgres-package-clean-data-absent:
  file.absent:
    - name: {{ pgha.postgres.data_dir }}
    - require:
      - sls: pgha.patroni.service.clean
{%- endif %}
