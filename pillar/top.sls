# -*- coding: utf-8 -*-
# vim: ft=sls
# Every minion (and the master's orchestration) sees the same cluster description.
# `lab_overrides` lives outside the checkout (/var/lib/pgha-lab/pillar, the second
# pillar root): the tests layer changes over the lab pillar there, e.g. an added node.
# `lab_tls` (same place) carries the lab's certificates, written by pgha-lab.
base:
  '*':
    - pgha
    - lab_tls
    - lab_overrides
    - ignore_missing: True
