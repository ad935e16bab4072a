# -*- coding: utf-8 -*-
# vim: ft=sls
# HAProxy: 5432 to the Patroni primary only, 5433 to replicas (primary as fallback),
# health-checked through Patroni's REST API.
include:
  - pgha.haproxy.package.install
  - pgha.haproxy.config.file
  - pgha.haproxy.service.running
