# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set pgha = salt["pgha.config"](redact=False) %}

include:
  - pgha.etcd.config.clean

pgha-etcd-package-clean-pkg-removed:
  pkg.removed:
    - pkgs: {{ pgha.etcd.packages | json }}
    - require:
      - sls: pgha.etcd.config.clean
