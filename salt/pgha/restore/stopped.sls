# -*- coding: utf-8 -*-
# vim: ft=sls
# Patroni stopped on this member (it stops PostgreSQL; a primary gives up its leader
# key as it goes), and disabled: a member that reboots while its data directory is moved
# aside must not bootstrap a cluster of its own. pgha.patroni enables it again.
{%- set pgha = salt["pgha.config"](redact=False) %}

pgha-restore-patroni-stopped:
  service.dead:
    - name: {{ pgha.patroni.service | json }}
    - enable: False
