#!/bin/sh
# Another DAMON tool at work: ask kdamond $1 for its stats in a loop, as `damo report`
# or a monitoring agent would, until $2 exists. Each request holds DAMON's global sysfs
# lock (a trylock), so concurrent writers get EBUSY. Prints requests and EBUSY answers.
set -u
state=/sys/kernel/mm/damon/admin/kdamonds/$1/state
requests=0
busy=0
while [ ! -e "$2" ]; do
  requests=$((requests + 1))
  if ! out=$( (echo update_schemes_stats > "$state") 2>&1); then
    case $out in *busy*) busy=$((busy + 1)) ;; esac
  fi
  # 50 requests a second: enough to collide with every writer, without starving sshd in
  # the emulated guest.
  sleep 0.02
done
echo "$requests $busy"
