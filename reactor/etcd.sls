{#- This node's etcd member runs but is unhealthy: restart it (orch/heal/etcd.sls). #}
pgha-react-etcd-unhealthy:
  runner.state.orchestrate:
    - args:
      - mods: orch.heal.etcd
      - pillar:
          event_tag: {{ tag | json }}
          event_data: {{ data | json }}
