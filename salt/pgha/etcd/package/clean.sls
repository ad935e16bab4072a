# -*- coding: utf-8 -*-
# vim: ft=sls
{%- from "pgha/map.jinja" import pgha %}

include:
  - pgha.etcd.config.clean

pgha-etcd-package-clean-pkg-removed:
  pkg.removed:
    - pkgs: {{ pgha.etcd.packages | json }}
    - require:
      - sls: pgha.etcd.config.clean
