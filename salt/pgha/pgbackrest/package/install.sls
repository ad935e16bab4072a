# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set pgha = salt["pgha.config"](redact=False) %}
{%- from "pgha/macros.jinja" import pkgs %}
{%- if pgha.backup_ready %}

pgha-pgbackrest-package-install-pkg-installed:
  pkg.installed:
    - pkgs: {{ pkgs(pgha.backup) }}
{%- endif %}
