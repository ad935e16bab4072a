# -*- coding: utf-8 -*-
# vim: ft=sls
# Patroni stopped on this member (it stops PostgreSQL; a primary gives up its leader
# key as it goes). It stays enabled: the restore starts it again.
{%- from "pgha/map.jinja" import pgha %}

pgha-restore-patroni-stopped:
  service.dead:
    - name: {{ pgha.patroni.service | json }}
