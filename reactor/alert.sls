{#- Alertmanager posted to salt-api's webhook: orch/heal/alert.sls checks the token and
    turns each alert into a pgha/alert/prometheus/<alertname> event. Only the SHA-256 of
    the Authorization header goes on, so the token never lands in a job's pillar. #}
{%- set headers = data.get("headers") if data.get("headers") is mapping else {} %}
pgha-react-alert-webhook:
  runner.state.orchestrate:
    - args:
      - mods: orch.heal.alert
      - pillar:
          auth_sha256: {{ (headers.get("Authorization", "") | string | sha256) | json }}
          post: {{ data.get("post") | json }}
