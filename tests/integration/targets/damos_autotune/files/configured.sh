#!/bin/sh
# After a boot, with the workload writing its score $1 (to $3) from boot on: wait (at most
# $2 s of uptime after SSH came up) until kdamond 0 runs with the stored goal target and the
# feeder has fed that score; print what the host holds, and how long after SSH came up
# (ssh.socket or ssh.service, whichever first) the feeder wrote it (its state file's
# last_write_ns).
set -u
K=/sys/kernel/mm/damon/admin/kdamonds/0
G=$K/contexts/0/schemes/0/quotas/goals/0
STATE=/run/damos-autotune/state
stored=$(python3 -c 'import json; print(json.load(open("/etc/kernel-damon/damos_autotune.json"))["scheme"]["goals"][0]["target"])')
ssh_up=$(systemctl show -P ActiveEnterTimestampMonotonic ssh.socket ssh.service | awk '$1 > 0' | sort -n | head -n 1)
deadline=$(( ${ssh_up:-0} / 1000000 + $2 ))
while :; do
  state=$(cat $K/state 2>/dev/null) target=$(cat $G/target_value 2>/dev/null) current=$(cat $G/current_value 2>/dev/null)
  if [ "$state" = on ] && [ "$target" = "$stored" ] && [ "$current" = "$1" ]; then ok=true; break; fi
  if [ "$(awk '{print int($1)}' /proc/uptime)" -gt "$deadline" ]; then ok=false; break; fi
  sleep 0.2
done
fed_ns=$(sed -n 's/^last_write_ns=\([0-9]*\)$/\1/p' $STATE 2>/dev/null)
# realtime of the write minus realtime of SSH (boot time + monotonic SSH start)
since_ssh=$(awk -v f="${fed_ns:-0}" -v s="${ssh_up:-0}" -v now="$(date +%s.%N)" \
  '{printf "%.1f", f / 1e9 - (now - $1) - s / 1e6}' /proc/uptime)
echo "{\"ok\": $ok, \"state\": \"$state\", \"target\": \"$target\", \"stored\": \"$stored\", \"current\": \"$current\", \"since_ssh\": $since_ssh, \"boot_id\": \"$(cat /proc/sys/kernel/random/boot_id)\"}"
