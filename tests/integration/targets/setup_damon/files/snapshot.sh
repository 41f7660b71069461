#!/bin/sh
# Print every readable file of the DAMON admin tree (or of the subtree given) as
# path=value, sorted: two snapshots compare byte for byte.
set -eu
root=/sys/kernel/mm/damon/admin${1:+/$1}
find "$root" -type f ! -path '*/tried_regions/*' | sort | while read -r f; do
  printf '%s=%s\n' "${f#/sys/kernel/mm/damon/admin/}" "$(cat "$f" 2>&1)"
done
for p in /sys/module/damon_*/parameters/enabled; do
  [ -e "$p" ] && printf '%s=%s\n' "$p" "$(cat "$p")"
done
