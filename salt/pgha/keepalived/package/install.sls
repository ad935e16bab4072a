# -*- coding: utf-8 -*-
# vim: ft=sls
{%- from "pgha/map.jinja" import pgha %}
{%- from "pgha/macros.jinja" import pkgs %}

pgha-keepalived-package-install-pkg-installed:
  pkg.installed:
    - pkgs: {{ pkgs(pgha.keepalived) }}
