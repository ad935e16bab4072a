# -*- coding: utf-8 -*-
# vim: ft=sls
# The beacons self-healing listens to, for this node's roles in pillar (the reactions
# run on the master; see reactor/). With pgha:heal:enabled false they are removed.
{%- set pgha = salt["pgha.config"](redact=False) %}
{%- set heal = pgha.heal %}
{%- set postgres = pgha.id in pgha.postgres_members %}
{%- set services = [] %}
{%- if postgres %}
{%-   do services.extend([pgha.etcd.service, pgha.patroni.service]) %}
{%- endif %}
{%- if pgha.id in pgha.haproxy_members %}
{%-   do services.append(pgha.haproxy.service) %}
{%-   if pgha.frontend == "keepalived" %}
{%-     do services.append(pgha.keepalived.service) %}
{%-   endif %}
{%- endif %}

{%- if services %}
pgha-beacons-services:
{%-   if heal.enabled %}
  beacon.present:
    - name: pgha_services
    - save: True
    - services: {{ services | json }}
    - interval: {{ heal.beacon_interval }}
    - delay: {{ heal.service_delay }}
    - repeat: {{ heal.repeat }}
{%-   else %}
  beacon.absent:
    - name: pgha_services
    - save: True
{%-   endif %}
{%- endif %}

{%- if postgres %}
pgha-beacons-patroni:
{%-   if heal.enabled %}
  beacon.present:
    - name: pgha_patroni
    - save: True
    - beacon_module: patroni
    - interval: {{ heal.beacon_interval }}
    - lag_bytes: {{ heal.lag_bytes }}
    - repeat: {{ heal.repeat }}
    - not_streaming_grace: {{ heal.not_streaming_grace }}
    - failed_grace: {{ heal.failed_grace }}
{%-   else %}
  beacon.absent:
    - name: pgha_patroni
    - save: True
{%-   endif %}

pgha-beacons-etcd:
{%-   if heal.enabled %}
  beacon.present:
    - name: pgha_etcd
    - save: True
    - beacon_module: etcd3
    - interval: {{ heal.beacon_interval }}
    - service: {{ pgha.etcd.service | json }}
    - grace: {{ heal.etcd_grace }}
    - repeat: {{ heal.repeat }}
{%-   else %}
  beacon.absent:
    - name: pgha_etcd
    - save: True
{%-   endif %}
{%- endif %}

{%- if pgha.backup_ready and (postgres or pgha.id in pgha.backup_members) %}
pgha-beacons-backup:
{%-   if heal.enabled %}
  beacon.present:
    - name: pgha_backup
    - save: True
    - interval: {{ heal.beacon_interval }}
    - check_interval: {{ heal.backup_check_interval }}
    - repeat: {{ heal.repeat }}
{%-   else %}
  beacon.absent:
    - name: pgha_backup
    - save: True
{%-   endif %}
{%- endif %}
