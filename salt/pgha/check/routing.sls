# -*- coding: utf-8 -*-
# vim: ft=sls
# On a haproxy node: writes go to the Patroni leader only. Changes nothing.
pgha-check-routing-writes-to-leader:
  pgha_haproxy.routes_writes_to_leader:
    - name: postgres_writer
    - timeout: 30
