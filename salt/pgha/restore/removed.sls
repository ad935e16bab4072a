# -*- coding: utf-8 -*-
# vim: ft=sls
# The cluster's state in etcd (/service/<scope>/: initialize key, config, history,
# members) removed with Patroni's own `patronictl remove`, once Patroni is stopped on
# every member. If a leader key is still there, a Patroni is still running somewhere:
# patronictl then asks for the leader's name, gets none, and refuses. pgha never deletes
# a leader key itself.
{%- set pgha = salt["pgha.config"](redact=False) %}

pgha-restore-cluster-removed:
  cmd.run:
    - name: {{ (pgha.patronictl_bin ~ " -c " ~ pgha.patroni.config_file ~ " remove " ~ pgha.cluster.name) | json }}
    - stdin: {{ (pgha.cluster.name ~ "\nYes I am aware\n") | json }}
    - runas: postgres
