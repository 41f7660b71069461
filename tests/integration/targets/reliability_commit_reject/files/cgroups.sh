#!/bin/sh
# Test cgroups (cgroup v2): /kdtest with the memory controller, /kdtest/child without it
# (kdtest enables nothing below itself), /kdrace with it. "clean" removes them.
set -eu
C=/sys/fs/cgroup
for d in "$C/kdtest/child" "$C/kdtest" "$C/kdrace"; do
  if [ -d "$d" ]; then rmdir "$d"; fi
done
if [ "${1:-}" = clean ]; then exit 0; fi
mkdir $C/kdtest $C/kdtest/child $C/kdrace
grep -qw memory $C/kdtest/cgroup.controllers
if grep -qw memory $C/kdtest/child/cgroup.controllers; then exit 1; fi
