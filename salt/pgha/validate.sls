# -*- coding: utf-8 -*-
# vim: ft=sls
# The pillar is checked before anything else runs; a bad pillar stops the run here, with
# one message per problem naming the key and the fix.
pgha-validate-pillar-validated:
  pgha.validated:
    - name: pgha
    - failhard: True
