# -*- coding: utf-8 -*-
# vim: ft=sls
# The backup node's only secret: the repository's passphrase. The postgres nodes never
# hold it (they ask the repository over pgBackRest's TLS protocol).
pgha:
  backup:
    repo:
      cipher_pass: lab-repo-7c41e9d25f0a4b38
