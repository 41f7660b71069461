#!/bin/sh
# A kdamond that kernel.damon does not manage, set up the way an operator or damo would:
# kdamond 0, paddr, a stat scheme with a quota, a user_input goal and a filter, running.
# kdamond 1 is left empty for kernel.damon. Prints the kdamond's pid.
set -eu
A=/sys/kernel/mm/damon/admin/kdamonds
p=/sys/module/damon_stat/parameters/enabled
if [ -e $p ] && [ "$(cat $p)" = Y ]; then echo N > $p; sleep 1; fi
echo 2 > $A/nr_kdamonds
echo 1 > $A/0/contexts/nr_contexts
C=$A/0/contexts/0
echo paddr > $C/operations
# Every 100 ms, not DAMON's default 5 ms: the emulated guests' CPU goes to the runs under test.
echo 100000 > $C/monitoring_attrs/intervals/sample_us
echo 2000000 > $C/monitoring_attrs/intervals/aggr_us
echo 1 > $C/targets/nr_targets
echo 1 > $C/targets/0/regions/nr_regions
echo 1048576 > $C/targets/0/regions/0/start
echo 268435456 > $C/targets/0/regions/0/end
echo 1 > $C/schemes/nr_schemes
S=$C/schemes/0
echo stat > $S/action
echo 4096 > $S/access_pattern/sz/min
echo 1073741824 > $S/access_pattern/sz/max
echo 0 > $S/access_pattern/age/min
echo 100 > $S/access_pattern/age/max
echo 1000 > $S/quotas/reset_interval_ms
echo 67108864 > $S/quotas/bytes
echo 1 > $S/quotas/goals/nr_goals
echo 100 > $S/quotas/goals/0/target_value
echo 50 > $S/quotas/goals/0/current_value
echo 1 > $S/filters/nr_filters
echo anon > $S/filters/0/type
echo Y > $S/filters/0/matching
echo on > $A/0/state
cat $A/0/pid
