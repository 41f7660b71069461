#!/bin/sh
# Configure kdamond 0 by hand, the way an operator or damo would: paddr, one stat
# scheme, running. kdamond 1 is left empty for kernel.damon.
set -eu
A=/sys/kernel/mm/damon/admin/kdamonds
p=/sys/module/damon_stat/parameters/enabled
if [ -e $p ]; then echo N > $p; sleep 1; fi
echo 2 > $A/nr_kdamonds
echo 1 > $A/0/contexts/nr_contexts
C=$A/0/contexts/0
echo paddr > $C/operations
echo 1 > $C/targets/nr_targets
echo 1 > $C/targets/0/regions/nr_regions
echo 1048576 > $C/targets/0/regions/0/start
echo 268435456 > $C/targets/0/regions/0/end
echo 1 > $C/schemes/nr_schemes
echo stat > $C/schemes/0/action
echo 4096 > $C/schemes/0/access_pattern/sz/min
echo 1073741824 > $C/schemes/0/access_pattern/sz/max
echo 0 > $C/schemes/0/access_pattern/age/min
echo 100 > $C/schemes/0/access_pattern/age/max
echo on > $A/0/state
cat $A/0/pid
