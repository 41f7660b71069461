#!/bin/sh
# Start one ansible-playbook process per line of stdin, all at once, as a fleet of cron
# jobs or CI pipelines would: each runs one module (one_run.yml) on every host of HOSTS.
#   parallel.sh INVENTORY HOSTS OUT < lines of "<module> <json args>"
# Process n leaves OUT/n/<host>.json (the module's result) and OUT/n.log; prints the count.
set -u
inventory=$1 hosts=$2 out=$3
here=$(dirname "$0")
# sshd takes at most 10 unauthenticated connections at once (MaxStartups) and drops the
# rest: let each run connect again rather than count an SSH refusal as a module result.
export ANSIBLE_SSH_RETRIES=10
# The guest's sshd answers slowly while many module processes share its one emulated vCPU.
export ANSIBLE_TIMEOUT=60
n=0
while IFS= read -r line; do
  module=${line%% *} args=${line#* }
  mkdir -p "$out/$n"
  # Each run its own SSH connection, as separate jobs would have: runs sharing one
  # multiplexed connection would hit sshd's MaxSessions (10) instead of DAMON.
  ANSIBLE_SSH_CONTROL_PATH_DIR=$out/$n/cp ansible-playbook -i "$inventory" "$here/one_run.yml" -e "{\"run_hosts\": \"$hosts\", \"run_module\": \"$module\",
    \"run_out\": \"$out/$n\", \"run_args\": $args}" >"$out/$n.log" 2>&1 &
  n=$((n + 1))
done
wait
# What went wrong in a run that did not reach or finish on every host, for the assertion.
i=0
while [ "$i" -lt "$n" ]; do
  if grep -Eq 'unreachable=[1-9]|failed=[1-9]' "$out/$i.log" || ! grep -q 'PLAY RECAP' "$out/$i.log"; then
    echo "run $i:" >&2
    grep -E 'fatal|UNREACHABLE|ERROR|msg' "$out/$i.log" | cut -c1-400 | tail -n 5 >&2
  fi
  i=$((i + 1))
done
echo "$n"
