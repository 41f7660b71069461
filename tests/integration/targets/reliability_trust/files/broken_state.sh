#!/bin/sh
# Writes /var/lib/kernel-damon/managed.json in one of the shapes a crash, a full disk or a
# careless edit leaves: empty, [], null, truncated JSON. Test hosts only.
set -eu
f=/var/lib/kernel-damon/managed.json
case $1 in
  empty) : > $f ;;
  list) echo '[]' > $f ;;
  null) echo 'null' > $f ;;
  truncated) printf '{"version": 2, "boot_id": "%s", "kdam' "$(cat /proc/sys/kernel/random/boot_id)" > $f ;;
  *) echo "unknown case $1" >&2; exit 2 ;;
esac
