#!/bin/sh
# Put DAMON back the way Debian boots: no sysfs kdamonds, DAMON_STAT as shipped, no
# kernel.damon state. Test hosts only.
set -eu
A=/sys/kernel/mm/damon/admin/kdamonds
n=$(cat $A/nr_kdamonds)
i=0
while [ "$i" -lt "$n" ]; do
  if [ "$(cat $A/$i/state)" = on ]; then echo off > $A/$i/state; fi
  i=$((i + 1))
done
echo 0 > $A/nr_kdamonds
rm -rf /var/lib/kernel-damon
p=/sys/module/damon_stat/parameters/enabled
if [ -e $p ] && [ "$(cat $p)" != Y ]; then echo Y > $p; fi
