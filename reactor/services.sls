{#- A pgha service is down: orch/heal/service.sls checks who says so, then converges it. #}
pgha-react-service-down:
  runner.state.orchestrate:
    - args:
      - mods: orch.heal.service
      - pillar:
          event_tag: {{ tag | json }}
          event_data: {{ data | json }}
