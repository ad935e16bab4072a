# -*- coding: utf-8 -*-
# vim: ft=sls
# PostgreSQL 17: packages only. Patroni owns initdb, postgresql.conf and pg_hba.conf.
include:
  - pgha.postgres.package.install
