#!/bin/sh
# Print, as key=value lines, the sysfs files behind one fleet report row: kdamond $1, scheme $2,
# goal $3 (default 0/0/0). Reads only.
set -eu
K=/sys/kernel/mm/damon/admin/kdamonds/${1:-0}
S=$K/contexts/0/schemes/${2:-0}
G=$S/quotas/goals/${3:-0}
printf 'kernel=%s\n' "$(uname -r)"
printf 'state=%s\npid=%s\n' "$(cat "$K/state")" "$(cat "$K/pid")"
printf 'action=%s\n' "$(cat "$S/action")"
printf 'target_metric=%s\ntarget_value=%s\n' "$(cat "$G/target_metric")" "$(cat "$G/target_value")"
printf 'bytes=%s\neffective_bytes=%s\n' "$(cat "$S/quotas/bytes")" "$(cat "$S/quotas/effective_bytes")"
printf 'reset_interval_ms=%s\n' "$(cat "$S/quotas/reset_interval_ms")"
printf 'sz_applied=%s\nqt_exceeds=%s\n' "$(cat "$S/stats/sz_applied")" "$(cat "$S/stats/qt_exceeds")"
