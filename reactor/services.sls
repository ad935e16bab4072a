{#- A pgha service is down on data["id"]: converge its service state (orch/heal/service.sls). #}
pgha-react-service-down:
  runner.state.orchestrate:
    - args:
      - mods: orch.heal.service
      - pillar:
          event_tag: {{ tag }}
          event_data: {{ data | json }}
