# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set pgha = salt["pgha.config"](redact=False) %}

include:
  - pgha.keepalived.config.clean

pgha-keepalived-package-clean-pkg-removed:
  pkg.removed:
    - pkgs: {{ pgha.keepalived.packages | json }}
    - require:
      - sls: pgha.keepalived.config.clean
