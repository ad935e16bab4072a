# -*- coding: utf-8 -*-
# vim: ft=sls
# pgha's extension modules (patroni, etcd3, pgha, ...) on this minion; reports changes
# only when something new was synced.
pgha-sync-saltutil-synced:
  saltutil.sync_all:
    - refresh: True
