# -*- coding: utf-8 -*-
# vim: ft=sls
# The monitor nodes' only secret (and the master's, which checks it): the token
# Alertmanager sends to salt-api's webhook. They hold no PostgreSQL or etcd credential:
# every exporter is read over TLS with the node's own certificate.
pgha:
  monitoring:
    alertmanager:
      webhook:
        token: lab-webhook-6a1d93f0c2b74e58
