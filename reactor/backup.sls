{#- The backup beacon: a stale backup or failing archiving. orch/heal/backup.sls checks
    who says so and alerts; nothing is repaired automatically. #}
pgha-react-backup:
  runner.state.orchestrate:
    - args:
      - mods: orch.heal.backup
      - pillar:
          event_tag: {{ tag | json }}
          event_data: {{ data | json }}
