#!/bin/sh
# In-guest check that kdamond 0 follows a workload service (a vaddr scheme on systemd_unit):
#   follow.sh UNIT LIMIT
# For each way the service's process is replaced (systemctl restart; a SIGKILL that the
# service's Restart= answers; systemctl stop, then start), waits at most LIMIT s until the
# kdamond runs again with the new main process as its target. Prints one JSON object:
# {"ok": ..., "cases": [{"case", "ok", "seconds", "old", "new", "target", "state"}, ...]}.
set -eu
unit=$1 limit=$2
K=/sys/kernel/mm/damon/admin/kdamonds/0
now() { date +%s.%N; }
since() { echo "$(now) $1" | awk '{printf "%.2f", $1 - $2}'; }
main_pid() { systemctl show -P MainPID "$unit"; }
target() { cat $K/contexts/0/targets/0/pid_target 2>/dev/null || echo none; }
state() { cat $K/state 2>/dev/null || echo none; }
# the kdamond's own pid: a restarted kdamond has a new one
kdamond() { cat $K/pid 2>/dev/null || echo none; }

ok=true cases=""
for case in restart kill stop-start; do
  old=$(main_pid) old_kdamond=$(kdamond) start=$(now)
  case $case in
    restart) systemctl restart "$unit" ;;
    kill) kill -KILL "$old" ;;
    stop-start) systemctl stop "$unit"; systemctl start "$unit" ;;
  esac
  # Done when the service has a new main process, the kdamond targets it and runs, and it
  # is a new kdamond (the old one ended with its target).
  result=false
  while :; do
    new=$(main_pid)
    if [ "$new" != 0 ] && [ "$new" != "$old" ] && [ "$(target)" = "$new" ] && [ "$(state)" = on ] \
        && [ "$(kdamond)" != "$old_kdamond" ]; then
      result=true
      break
    fi
    [ "$(echo "$(now) $start $limit" | awk '{print ($1 - $2 > $3)}')" = 1 ] && break
    sleep 0.1
  done
  [ $result = true ] || ok=false
  cases="$cases${cases:+, }{\"case\": \"$case\", \"ok\": $result, \"seconds\": $(since "$start"), \"old\": $old,
    \"new\": $(main_pid), \"target\": \"$(target)\", \"state\": \"$(state)\", \"kdamond\": \"$(kdamond)\"}"
done
echo "{\"ok\": $ok, \"cases\": [$cases]}"
