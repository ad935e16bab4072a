# -*- coding: utf-8 -*-
# vim: ft=sls
# pgBackRest (pgha:backup): on the backup node the repository and its TLS server; on
# the postgres nodes the client configuration (archive-push, archive-get, restore) and
# a TLS server of their own, through which the backup node reads the data directory.
# With pgha:backup:enabled false this does nothing.
include:
  - pgha.pgbackrest.package.install
  - pgha.pgbackrest.config.file
  - pgha.pgbackrest.service.running
