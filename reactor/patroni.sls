{#- The Patroni beacon: a new leader (orch/heal/role_change.sls) or a failed replica
    (orch/heal/replica.sls). Other kinds (lag, missing, pending_restart) are for people. #}
{%- set kind = tag.split("/")[-1] %}
{%- if kind == "role_changed" and data.get("new_role") == "leader" %}
pgha-react-leader-changed:
  runner.state.orchestrate:
    - args:
      - mods: orch.heal.role_change
      - pillar:
          event_tag: {{ tag }}
          event_data: {{ data | json }}
{%- elif kind == "state" and data.get("role") == "replica" %}
pgha-react-replica-failed:
  runner.state.orchestrate:
    - args:
      - mods: orch.heal.replica
      - pillar:
          event_tag: {{ tag }}
          event_data: {{ data | json }}
{%- endif %}
