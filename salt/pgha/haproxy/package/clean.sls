# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set pgha = salt["pgha.config"](redact=False) %}

include:
  - pgha.haproxy.config.clean

pgha-haproxy-package-clean-pkg-removed:
  pkg.removed:
    - pkgs: {{ pgha.haproxy.packages | json }}
    - require:
      - sls: pgha.haproxy.config.clean
