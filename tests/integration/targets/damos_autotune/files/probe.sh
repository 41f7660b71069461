#!/bin/sh
# In-guest probes of damos-autotune for the integration target; each prints one JSON object.
#   probe.sh feed SCORE_FILE VALUE LIMIT      write VALUE, time until the goal's current_value shows it
#   probe.sh hostile SCORE_FILE WAIT          hostile scores: no write, one journal line each (and
#                                             the last still one after WAIT s)
#   probe.sh stale SCORE_FILE TARGET LIMIT    an old score file: time until the target is fed
set -eu
G=/sys/kernel/mm/damon/admin/kdamonds/0/contexts/0/schemes/0/quotas/goals/0
STATE=/run/damos-autotune/state

now() { date +%s.%N; }
since() { echo "$(now) $1" | awk '{printf "%.2f", $1 - $2}'; }
current() { cat $G/current_value 2>/dev/null || echo none; }
writes() { w=$(sed -n 's/^writes=\([0-9]*\)$/\1/p' $STATE 2>/dev/null || true); echo "${w:-0}"; }
# journal lines of the feeder since a time (seconds since the epoch)
lines() { journalctl -q -t damos-autotune --since "@${1%.*}" -o cat | grep -c -- "$2" || true; }
# the journal's position now, and the feeder's lines after such a position
cursor() { journalctl -q -n 1 --show-cursor -o cat | sed -n 's/^-- cursor: //p'; }
lines_after() { journalctl -q -t damos-autotune --after-cursor "$1" -o cat | grep -c -- "$2" || true; }
# wait until current_value is $1, at most $2 seconds; prints the seconds it took or fails
wait_for() {
  start=$(now)
  while [ "$(current)" != "$1" ]; do
    if [ "$(echo "$(now) $start $2" | awk '{print ($1 - $2 > $3)}')" = 1 ]; then
      echo "{\"ok\": false, \"waited\": $(since "$start"), \"want\": \"$1\", \"current\": \"$(current)\"}"
      exit 1
    fi
    sleep 0.05
  done
  since "$start"
}
put() { # atomically replace the score file with printf-style content
  printf '%b' "$2" > "$1.new"; chmod 0644 "$1.new"; mv -f "$1.new" "$1"
}

case $1 in
feed)
  took=$(put "$2" "$3\n"; wait_for "$3" "$4") || { echo "$took"; exit 1; }
  echo "{\"ok\": true, \"seconds\": $took, \"value\": $3}"
  ;;
hostile)
  # Each case goes on at the feeder's journal line about it (at most WAIT s); the last case
  # then stays WAIT s more, so a rejected score logged again at every tick shows.
  file=$2 wait=$3 n=0 out=""
  secret=/root/damos-autotune-secret
  printf '5555\n' > $secret; chmod 0600 $secret
  for case in empty abc 1e400 -5 megabyte binary symlink; do
    n=$((n + 1)); valid=$((4000 + n))
    put "$file" "$valid\n"; wait_for $valid 30 >/dev/null
    before=$(writes) mark=$(cursor) start=$(now)
    case $case in
      empty) put "$file" "" ;;
      megabyte) head -c 1048576 /dev/zero | tr '\0' '1' > "$file.new"; mv -f "$file.new" "$file" ;;
      binary) put "$file" '\001\002\377\n' ;;
      symlink) ln -sfn $secret "$file.new"; mv -Tf "$file.new" "$file" ;;
      *) put "$file" "$case\n" ;;
    esac
    while [ "$(lines_after "$mark" 'nothing written')" = 0 ] \
        && [ "$(echo "$(now) $start $wait" | awk '{print ($1 - $2 <= $3)}')" = 1 ]; do
      sleep 0.5
    done
    if [ $case = symlink ]; then sleep "$wait"; fi
    out="$out{\"case\": \"$case\", \"fed_before\": $valid, \"current\": \"$(current)\", \"writes_before\": $before, \"writes_after\": $(writes), \"logged\": $(lines_after "$mark" 'nothing written')},"
  done
  rm -f "$file" $secret
  put "$file" "4000\n"; wait_for 4000 30 >/dev/null
  echo "{\"cases\": [${out%,}]}"
  ;;
stale)
  start=$(now)
  touch -d '-1 hour' "$2"
  took=$(wait_for "$3" "$4") || { echo "$took"; exit 1; }
  sleep 2
  echo "{\"ok\": true, \"seconds\": $took, \"stale_lines\": $(lines "$start" 'old (timeout'), \"freeze_lines\": $(lines "$start" 'feeding the target')}"
  ;;
*) echo "usage: see the header" >&2; exit 2 ;;
esac
