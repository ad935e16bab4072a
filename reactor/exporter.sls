{#- Prometheus says an exporter is down: orch/heal/exporter.sls applies the exporters'
    state on the member the alert names (it starts the exporter only if it is down).
    A resolved alert needs nothing. #}
{%- if data.get("status") == "firing" %}
pgha-react-exporter-down:
  runner.state.orchestrate:
    - args:
      - mods: orch.heal.exporter
      - pillar:
          event_tag: {{ tag | json }}
          event_data: {{ data | json }}
{%- endif %}
