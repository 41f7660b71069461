#!/bin/sh
# Reboot the guest as soon as the goal's target_value is $1: in the middle of a rollout,
# after the role changed the scheme and before it stored the new one and reloaded the feeder.
G=/sys/kernel/mm/damon/admin/kdamonds/0/contexts/0/schemes/0/quotas/goals/0/target_value
n=0
while [ "$(cat "$G" 2>/dev/null)" != "$1" ]; do
  n=$((n + 1))
  if [ "$n" -gt 6000 ]; then echo "target_value never became $1" >&2; exit 1; fi
  sleep 0.1
done
systemctl reboot
