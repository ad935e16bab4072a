{#- The Patroni beacon: a role change (orch/heal/role_change.sls) or a failed member
    (orch/heal/replica.sls). Routed by the tag only: the orchestration checks the
    signature and every value before anything acts. Other kinds (lag, missing,
    pending_restart) are for people. #}
{%- set kind = tag.split("/")[-1] %}
{%- if kind == "role_changed" %}
pgha-react-leader-changed:
  runner.state.orchestrate:
    - args:
      - mods: orch.heal.role_change
      - pillar:
          event_tag: {{ tag | json }}
          event_data: {{ data | json }}
{%- elif kind == "state" %}
pgha-react-replica-failed:
  runner.state.orchestrate:
    - args:
      - mods: orch.heal.replica
      - pillar:
          event_tag: {{ tag | json }}
          event_data: {{ data | json }}
{%- endif %}
