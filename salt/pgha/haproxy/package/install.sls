# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set pgha = salt["pgha.config"](redact=False) %}
{%- from "pgha/macros.jinja" import pkgs %}

pgha-haproxy-package-install-pkg-installed:
  pkg.installed:
    - pkgs: {{ pkgs(pgha.haproxy) }}
