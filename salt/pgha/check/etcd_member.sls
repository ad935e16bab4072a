# -*- coding: utf-8 -*-
# vim: ft=sls
# This node's etcd member answers healthy. Changes nothing.
pgha-check-etcd-member-healthy:
  etcd3.member_healthy:
    - name: {{ grains["id"] }}
    - timeout: 60
