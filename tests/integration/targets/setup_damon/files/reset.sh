#!/bin/sh
# Put DAMON back the way Debian boots: no sysfs kdamonds, DAMON_STAT as shipped, no
# kernel.damon state, no damos_autotune role (what its absent state would remove, done
# without Ansible so that every target can start from here cheaply). Test hosts only.
set -eu
found=no
for unit in /etc/systemd/system/damos-autotune*; do
  [ -e "$unit" ] || continue
  systemctl disable --now "${unit##*/}" >/dev/null 2>&1 || true
  rm -f "$unit"
  found=yes
done
if [ $found = yes ]; then
  systemctl daemon-reload
  systemctl reset-failed >/dev/null 2>&1 || true
fi
# Helpers of the trust tests that a failed target may have left running.
systemctl stop kd-test-hostile.service kd-test-victim.service >/dev/null 2>&1 || true
if [ -e /etc/systemd/system/kd-test-foreign.service ]; then
  systemctl disable --now kd-test-foreign.service >/dev/null 2>&1 || true
  rm -f /etc/systemd/system/kd-test-foreign.service /usr/local/share/kd-test-foreign.sh
  systemctl daemon-reload
fi
rm -rf /usr/local/lib/kernel-damon /usr/local/sbin/damos-autotune /etc/kernel-damon \
  /etc/tmpfiles.d/damos-autotune.conf /run/damos-autotune
A=/sys/kernel/mm/damon/admin/kdamonds
n=$(cat $A/nr_kdamonds)
i=0
while [ "$i" -lt "$n" ]; do
  if [ "$(cat $A/$i/state)" = on ]; then echo off > $A/$i/state; fi
  i=$((i + 1))
done
echo 0 > $A/nr_kdamonds
rm -rf /var/lib/kernel-damon /run/kernel-damon /run/lock/kernel-damon.lock
p=/sys/module/damon_stat/parameters/enabled
if [ -e $p ] && [ "$(cat $p)" != Y ]; then echo Y > $p; fi
