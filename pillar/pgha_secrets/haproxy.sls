# -*- coding: utf-8 -*-
# vim: ft=sls
# The haproxy nodes' only secret: the stats page's password. They hold no PostgreSQL,
# Patroni or etcd credential (their health checks read Patroni's open endpoints).
pgha:
  haproxy:
    stats:
      password: lab-stats-77e0b2
