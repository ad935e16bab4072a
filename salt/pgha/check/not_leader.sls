# -*- coding: utf-8 -*-
# vim: ft=sls
# pgha_run:member is not the Patroni leader, asked right now. Changes nothing.
pgha-check-not-leader:
  patroni.not_leader:
    - name: {{ salt["pillar.get"]("pgha_run:member") | json }}
