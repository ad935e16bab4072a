# -*- coding: utf-8 -*-
# vim: ft=sls
{%- from "pgha/map.jinja" import pgha %}
{%- from "pgha/macros.jinja" import pkgs %}

pgha-etcd-package-install-pkg-installed:
  pkg.installed:
    - pkgs: {{ pkgs(pgha.etcd) }}
