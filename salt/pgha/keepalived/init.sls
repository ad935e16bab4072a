# -*- coding: utf-8 -*-
# vim: ft=sls
# keepalived: the VRRP VIP in front of the haproxy nodes. It follows the haproxy process.
include:
  - pgha.keepalived.package.install
  - pgha.keepalived.config.file
  - pgha.keepalived.service.running
