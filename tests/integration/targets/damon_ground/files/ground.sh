#!/bin/sh
# Prove the ground by raw sysfs writes, as the kernel documents them: a paddr kdamond
# with one pageout scheme and one user_input goal starts, takes goal updates online,
# reports a moving effective quota, and stops. Prints one "key=value" line per finding.
set -eu
A=/sys/kernel/mm/damon/admin/kdamonds
stat_param=/sys/module/damon_stat/parameters/enabled
w() { printf '%s\n' "$2" > "$A/$1"; }
r() { cat "$A/$1"; }
# try_w FILE VALUE: write and print "ok" or the errno name (EBUSY, ...).
try_w() {
  python3 -c 'import errno, sys
try:
    with open(sys.argv[1], "w") as f:
        f.write(sys.argv[2] + "\n")
    print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))' "$A/$1" "$2"
}

if [ "$(r nr_kdamonds)" != 0 ]; then echo "error=kdamonds already configured"; exit 1; fi
stat_was=N
if [ -e "$stat_param" ]; then stat_was=$(cat "$stat_param"); fi
echo "damon_stat_enabled=$stat_was"

w nr_kdamonds 1
w 0/contexts/nr_contexts 1
C=0/contexts/0
w $C/operations paddr
w $C/monitoring_attrs/intervals/sample_us 5000
w $C/monitoring_attrs/intervals/aggr_us 100000
w $C/targets/nr_targets 1
w $C/targets/0/regions/nr_regions 1
ram=$(grep 'System RAM' /proc/iomem | awk -F'[- :]+' '{s=strtonum("0x"$1); e=strtonum("0x"$2); if (e-s > best) {best=e-s; bs=s; be=e}} END {printf "%d %d", bs, be+1}' 2>/dev/null || true)
if [ -z "$ram" ]; then
  # mawk has no strtonum: fall back to python3.
  ram=$(python3 -c 'import re;r=[tuple(int(x,16) for x in l.split(":")[0].strip().split("-")) for l in open("/proc/iomem") if "System RAM" in l];s,e=max(r,key=lambda t:t[1]-t[0]);print(s,e+1)')
fi
w $C/targets/0/regions/0/start "${ram% *}"
w $C/targets/0/regions/0/end "${ram#* }"
w $C/schemes/nr_schemes 1
S=$C/schemes/0
w $S/action pageout
w $S/access_pattern/sz/min 0
w $S/access_pattern/sz/max 18446744073709551615
w $S/access_pattern/nr_accesses/min 0
w $S/access_pattern/nr_accesses/max 0
w $S/access_pattern/age/min 0
w $S/access_pattern/age/max 4294967295
w $S/quotas/reset_interval_ms 100
w $S/quotas/bytes 1073741824
w $S/quotas/goals/nr_goals 1
w $S/quotas/goals/0/target_metric user_input
w $S/quotas/goals/0/target_value 10000
w $S/quotas/goals/0/current_value 0

# Starting while an exclusive DAMON module runs must fail with EBUSY.
if [ "$stat_was" = Y ]; then
  echo "on_with_damon_stat=$(try_w 0/state on)"
  echo N > "$stat_param"
  # DAMON_STAT's kdamond stops asynchronously.
  for _ in $(seq 50); do pgrep -x kdamond.0 >/dev/null || break; sleep 0.1; done
fi

w 0/state on
echo "state_after_on=$(r 0/state)"
pid=$(r 0/pid)
echo "pid=$pid"
echo "metric=$(r $S/quotas/goals/0/target_metric)"

# Writing nr_goals with the same count recreates the goal directories with defaults.
w $S/quotas/goals/nr_goals 1
echo "target_after_same_nr_goals=$(r $S/quotas/goals/0/target_value)"
w $S/quotas/goals/0/target_metric user_input
w $S/quotas/goals/0/target_value 10000
w $S/quotas/goals/0/current_value 0

sleep 3
w 0/state update_schemes_effective_quotas
grow=$(r $S/quotas/effective_bytes)
echo "effective_bytes_growing=$grow"

# Score far above the target: the tuner drops the quota to its minimum.
w $S/quotas/goals/0/current_value 30000
w 0/state commit_schemes_quota_goals
sleep 2
w 0/state update_schemes_effective_quotas
echo "effective_bytes_after_high_score=$(r $S/quotas/effective_bytes)"
echo "pid_after_goal_commit=$(r 0/pid)"

w 0/state commit
echo "pid_after_commit=$(r 0/pid)"
w 0/state update_schemes_stats
echo "nr_tried=$(r $S/stats/nr_tried)"

echo "nr_kdamonds_while_on=$(try_w nr_kdamonds 2)"
echo "bad_metric_keyword=$(try_w $S/quotas/goals/0/target_metric no_such_metric)"

w 0/state off
echo "state_after_off=$(r 0/state)"
w nr_kdamonds 0
if [ "$stat_was" = Y ]; then echo Y > "$stat_param"; fi
echo "damon_stat_restored=$( [ -e "$stat_param" ] && cat "$stat_param" || echo absent)"
