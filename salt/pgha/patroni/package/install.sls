# -*- coding: utf-8 -*-
# vim: ft=sls
{%- set pgha = salt["pgha.config"](redact=False) %}
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

# A pip install's unit would shadow the package's (a node switched back from pip).
pgha-patroni-package-install-unit-managed:
  file.absent:
    - name: /etc/systemd/system/{{ patroni.service }}.service
    - require:
      - pkg: pgha-patroni-package-install-pkg-installed
{%- else %}
{%-   set pip = patroni.pip %}
pgha-patroni-package-install-venv-deps:
  pkg.installed:
    - pkgs: {{ pip.system_packages | json }}

# --system-site-packages: the distribution's python3-systemd (Patroni's sd_notify).
pgha-patroni-package-install-venv-created:
  cmd.run:
    - name: python3 -m venv --system-site-packages {{ pip.venv }}
    - creates: {{ pip.venv }}/bin/pip
    - require:
      - pkg: pgha-patroni-package-install-venv-deps

pgha-patroni-package-install-pip-installed:
  pip.installed:
    - pkgs: {{ pip.requirements | json }}
    - bin_env: {{ pip.venv }}/bin/pip
{%-   for key in ("index_url", "find_links", "trusted_host", "proxy", "cert") if pip[key] %}
    - {{ key }}: {{ pip[key] | json }}
{%-   endfor %}
{%-   if pip.no_index %}
    - no_index: True
{%-   endif %}
    - require:
      - cmd: pgha-patroni-package-install-venv-created
      - sls: pgha.postgres.package.install

# Debian's package ships the unit; a pip install brings the one Patroni 4.1 documents.
pgha-patroni-package-install-unit-managed:
  file.managed:
    - name: /etc/systemd/system/{{ patroni.service }}.service
    - source: salt://pgha/patroni/files/patroni.service.jinja
    - template: jinja
    - mode: '0644'
    - require:
      - pip: pgha-patroni-package-install-pip-installed

pgha-patroni-package-install-patronictl-on-path:
  file.symlink:
    - name: /usr/local/bin/patronictl
    - target: {{ pgha.patronictl_bin | json }}
    - require:
      - pip: pgha-patroni-package-install-pip-installed
{%- endif %}
