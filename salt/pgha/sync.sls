# -*- coding: utf-8 -*-
# vim: ft=sls
# pgha's extension modules (patroni, etcd3, pgha, ...) on this minion; reports changes
# only when something new was synced. Only the kinds pgha ships to minions: each
# saltutil.sync_<kind> asks the master for its whole file list, and sync_all asks for
# some twenty kinds (30 s for the lab's six minions at once, most of the deploy's first step).
{%- for kind in ["utils", "modules", "states", "beacons"] %}
pgha-sync-saltutil-synced-{{ kind }}:
  saltutil.sync_{{ kind }}:
    - refresh: True
{%- endfor %}
