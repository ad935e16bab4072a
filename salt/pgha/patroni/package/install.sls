# -*- coding: utf-8 -*-
# vim: ft=sls
{%- from "pgha/map.jinja" import pgha %}
{%- from "pgha/macros.jinja" import pkgs %}
{%- set patroni = pgha.patroni %}

include:
  - pgha.postgres.package.install

{%- if patroni.install_method == "deb" %}
pgha-patroni-package-install-pkg-installed:
  pkg.installed:
    - pkgs: {{ pkgs(patroni) }}
    - require:
      - sls: pgha.postgres.package.install
{%- else %}
{%-   set venv = patroni.pip.venv %}
pgha-patroni-package-install-venv-deps:
  pkg.installed:
    - pkgs: [python3-venv]

pgha-patroni-package-install-venv-created:
  cmd.run:
    - name: python3 -m venv {{ venv }}
    - creates: {{ venv }}/bin/pip
    - require:
      - pkg: pgha-patroni-package-install-venv-deps

pgha-patroni-package-install-pip-installed:
  pip.installed:
    - pkgs: {{ patroni.pip.requirements | json }}
    - bin_env: {{ venv }}/bin/pip
{%-   if patroni.pip.index_url %}
    - index_url: {{ patroni.pip.index_url }}
{%-   endif %}
{%-   if patroni.pip.proxy %}
    - proxy: {{ patroni.pip.proxy }}
{%-   endif %}
{%-   if patroni.pip.cert %}
    - cert: {{ patroni.pip.cert }}
{%-   endif %}
    - require:
      - cmd: pgha-patroni-package-install-venv-created
      - sls: pgha.postgres.package.install

# Debian's package ships the unit; a pip install brings its own.
pgha-patroni-package-install-unit-managed:
  file.managed:
    - name: /etc/systemd/system/{{ patroni.service }}.service
    - source: salt://pgha/patroni/files/patroni.service.jinja
    - template: jinja
    - mode: '0644'
    - require:
      - pip: pgha-patroni-package-install-pip-installed
{%- endif %}
