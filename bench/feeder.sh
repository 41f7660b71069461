#!/bin/sh
# Cost of damos-autotune's feeder, measured inside one fleet VM; prints one JSON object.
#   feeder.sh setup                             /bin/true timers with the settings of the feeder's timer:
#                                               bare, and in the feeder's sandbox
#   feeder.sh timer SECONDS ROUNDS INTERVAL_S   idle vs the /bin/true timers vs the feeder's timer
#   feeder.sh daemon SECONDS ROUNDS INTERVAL_S SCORE_FILE
#                                               idle vs the feeder service vs a bare Python loop,
#                                               bare and in the feeder's sandbox
#   feeder.sh update ROUNDS SCORE_FILE          daemon mode: the feeder's own CPU for one score update
#   feeder.sh wake SECONDS ROUNDS SCORE_FILE    idle: own CPU per second and wake-ups per minute of the
#                                               event-driven daemon, the same daemon polling
#                                               (DAMOS_AUTOTUNE_POLL=1) and a sleep loop in its sandbox
#   feeder.sh latency ROUNDS SCORE_FILE         ms from a score change to current_value: event-driven, polling
#   feeder.sh metrics SECONDS                   the metrics writer's own CPU per refresh (1 s refreshes)
#   feeder.sh exec RUNS                         CPU of one run of /bin/true and of python3 -I -S -c pass
#   feeder.sh exposure                          systemd-analyze security of the role's units
#   feeder.sh cleanup                           remove the benchmark's units
# Phases alternate ROUNDS times, SECONDS each, so that all share the VM's conditions.
# CPU is the whole VM's busy time (/proc/stat: user, nice, system, irq, softirq, steal), so
# systemd's and journald's work for a tick counts; the idle phase is subtracted. New pids per
# tick beyond the idle phase's rate are reported too (the sandbox's helpers show there).
# The daemon's own CPU also comes from its cgroup (cpu.stat usage_usec).
set -eu
case $1 in
setup)
  { printf '[Unit]\nDescription=bench: /bin/true at the interval of the feeder\n\n'
    sed -n '/^\[Timer\]/,/^\[Install\]/p' /etc/systemd/system/damos-autotune-feeder.timer | sed '/^\[Install\]/d'
  } > /etc/systemd/system/bench-true.timer
  printf '[Unit]\nDescription=bench: /bin/true\n\n[Service]\nType=oneshot\nExecStart=/bin/true\n' \
    > /etc/systemd/system/bench-true.service
  # The same in the feeder's sandbox: what systemd's sandbox setup costs a tick by itself.
  sed 's/^Description=.*/Description=bench: \/bin\/true in the sandbox of the feeder/' \
    /etc/systemd/system/bench-true.timer > /etc/systemd/system/bench-truesbx.timer
  { cat /etc/systemd/system/bench-true.service
    sed -n '/^NoNewPrivileges=/,/^\[Install\]/p' /etc/systemd/system/damos-autotune-feeder.service | grep -v '^\[Install\]'
  } > /etc/systemd/system/bench-truesbx.service
  systemctl daemon-reload
  exit 0 ;;
exec)
  # Children's CPU (cutime + cstime of this shell) over RUNS runs of each, in ms per run.
  children() { awk '{print $16 + $17}' /proc/$$/stat; }
  hz=$(getconf CLK_TCK)
  printf '{'
  sep=''
  for name in true python; do
    c0=$(children) i=0
    while [ "$i" -lt "$2" ]; do
      i=$((i + 1))
      if [ "$name" = true ]; then /bin/true; else /usr/bin/python3 -I -S -c pass; fi
    done
    printf '%s"%s_ms_per_run": %s' "$sep" "$name" "$(echo "$(children) $c0 $hz $2" | awk '{printf "%.1f", ($1 - $2) * 1000 / $3 / $4}')"
    sep=', '
  done
  echo '}'
  exit 0 ;;
exposure)
  printf '{'
  sep=''
  for unit in damos-autotune-apply.service damos-autotune-feeder.service; do
    level=$(systemd-analyze security --no-pager "$unit" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    printf '%s"%s": %s' "$sep" "$unit" "$level"
    sep=', '
  done
  echo '}'
  exit 0 ;;
update)
  # The running daemon's cgroup CPU (cpu.stat usage_usec: the feeder process only, no
  # systemd activation) across one score change: write a new score, wait until the goal's
  # current_value shows it and one more tick has passed, then subtract the idle ticks of
  # the same span, measured just before. Prints the per-update CPU of each round, in ms.
  rounds=$2 file=$3
  goal=/sys/kernel/mm/damon/admin/kdamonds/0/contexts/0/schemes/0/quotas/goals/0/current_value
  usage() { awk '/^usage_usec/{print $2}' /sys/fs/cgroup/system.slice/damos-autotune-feeder.service/cpu.stat; }
  now_us() { awk '{printf "%d", $1 * 1000000}' /proc/uptime; }
  # The daemon may have just started: its interpreter's start-up is not a tick.
  sleep 5
  u0=$(usage) t0=$(now_us); sleep 10; idle=$(( ($(usage) - u0) * 1000000 / ($(now_us) - t0) ))  # us per s
  printf '{"idle_us_per_s": %d, "update_ms": [' "$idle"
  r=0 sep=''
  while [ "$r" -lt "$rounds" ]; do
    r=$((r + 1)) value=$((20000 + r))   # above the target: the quota stays at its minimum
    sleep 1.5
    u0=$(usage) t0=$(now_us)
    printf '%d\n' "$value" > "$file.new"; chmod 0644 "$file.new"; mv -f "$file.new" "$file"
    n=0
    while [ "$(cat $goal)" != "$value" ]; do
      n=$((n + 1)); [ "$n" -lt 600 ] || { echo "no update to $value" >&2; exit 1; }
      sleep 0.05
    done
    sleep 1.5
    u1=$(usage) t1=$(now_us)
    printf '%s%s' "$sep" "$(echo "$u1 $u0 $idle $t1 $t0" | awk '{printf "%.2f", ($1 - $2 - $3 * ($4 - $5) / 1000000) / 1000}')"
    sep=', '
  done
  echo ']}'
  exit 0 ;;
wake|latency)
  # Both modes of the same daemon, in turn: a drop-in (gone at reboot) makes it poll.
  unit=damos-autotune-feeder.service
  dropin=/run/systemd/system/$unit.d
  use() { # event | poll
    if [ "$1" = poll ]; then
      mkdir -p "$dropin"; printf '[Service]\nEnvironment=DAMOS_AUTOTUNE_POLL=1\n' > "$dropin/bench-poll.conf"
    else
      rm -rf "$dropin"
    fi
    systemctl daemon-reload; systemctl restart "$unit"
  }
  cgroup_us() { awk '/^usage_usec/{print $2}' "/sys/fs/cgroup/system.slice/$1/cpu.stat"; }
  # Wake-ups: voluntary context switches of all the process's threads (each return from
  # poll() or sleep() is one).
  wakes() { cat /proc/"$(systemctl show -P MainPID "$1")"/task/*/status | awk '/^voluntary_ctxt_switches/{n += $2} END {print n}'; }
  now_us() { awk '{printf "%d", $1 * 1000000}' /proc/uptime; }
  # The touch timer is a transient unit (systemd-run): stopped, it is gone, and made again at the end.
  systemctl stop bench-touch.timer damos-autotune-metrics.service 2>/dev/null || true
  touch_again() {
    systemd-run -q --unit=bench-touch --on-active=1s --on-unit-active=10s --timer-property=AccuracySec=1s \
      touch "$1"
  }
  if [ "$1" = latency ]; then
    rounds=$2 score=$3
    cat > /run/bench-latency.py <<'PY'
import json, os, sys, time
score, goal, rounds, base = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
fd = os.open(goal, os.O_RDONLY)
found = []
for r in range(rounds):
    value = base + r
    time.sleep(1.5)     # more than an interval since the last tick: the change alone decides
    with open(score + '.new', 'w', encoding='ascii') as handle:
        handle.write('%d\n' % value)
    os.chmod(score + '.new', 0o644)
    start = time.monotonic()
    os.rename(score + '.new', score)
    while int(os.pread(fd, 32, 0)) != value:
        if time.monotonic() - start > 10:
            sys.exit('current_value never showed %d' % value)
        time.sleep(0.002)
    found.append(round((time.monotonic() - start) * 1000, 1))
print(json.dumps(found))
PY
    goal=/sys/kernel/mm/damon/admin/kdamonds/0/contexts/0/schemes/0/quotas/goals/0/current_value
    use event; sleep 3
    event=$(python3 /run/bench-latency.py "$score" "$goal" "$rounds" 30000)
    use poll; sleep 3
    poll=$(python3 /run/bench-latency.py "$score" "$goal" "$rounds" 40000)
    use event; rm -f /run/bench-latency.py
    printf '{"event_ms": %s, "poll_ms": %s}\n' "$event" "$poll"
    touch_again "$score"
    exit 0
  fi
  seconds=$2 rounds=$3 score=$4
  printf 'import time\nwhile True:\n    time.sleep(1 - time.monotonic() %% 1)\n' > /run/bench-sleep.py
  { printf '[Unit]\nDescription=bench: a sleep loop in the sandbox of the feeder\n[Service]\nType=exec\n'
    grep '^User=' "/etc/systemd/system/$unit"
    printf 'ExecStart=/usr/bin/python3 -I -S /run/bench-sleep.py\n'
    sed -n '/^NoNewPrivileges=/,/^\[Install\]/p' "/etc/systemd/system/$unit" | grep -v '^\[Install\]'
  } > /etc/systemd/system/bench-sleepsbx.service
  : > /tmp/feeder-wake.raw
  measure() { # name unit
    # A fresh score (an event: one tick), then a window shorter than the timeout (30 s).
    touch "$score"; sleep 4
    u0=$(cgroup_us "$2") w0=$(wakes "$2") t0=$(now_us)
    sleep "$seconds"
    echo "$1 $(($(now_us) - t0)) $(($(cgroup_us "$2") - u0)) $(($(wakes "$2") - w0))" >> /tmp/feeder-wake.raw
  }
  r=0
  while [ "$r" -lt "$rounds" ]; do
    r=$((r + 1))
    use event; measure event "$unit"
    use poll; measure poll "$unit"
    use event; systemctl stop "$unit"
    systemctl daemon-reload; systemctl start bench-sleepsbx.service; measure sleep bench-sleepsbx.service
    systemctl stop bench-sleepsbx.service; systemctl start "$unit"
  done
  rm -f /etc/systemd/system/bench-sleepsbx.service /run/bench-sleep.py; systemctl daemon-reload
  touch_again "$score"
  awk '{ us[$1] += $2; cpu[$1] += $3; w[$1] += $4 }
    END {
      printf "{"; sep = ""
      for (p in us) { printf "%s\"%s\": {\"seconds\": %.1f, \"cpu_us_per_s\": %.1f, \"wakeups_per_min\": %.2f}", sep, p, us[p] / 1e6, cpu[p] * 1e6 / us[p], w[p] * 60e6 / us[p]; sep = ", " }
      print "}"
    }' /tmp/feeder-wake.raw
  exit 0 ;;
metrics)
  # The metrics writer at 1 s refreshes: its own CPU per refresh (cgroup), after its start.
  unit=damos-autotune-metrics.service seconds=$2
  usage() { awk '/^usage_usec/{print $2}' "/sys/fs/cgroup/system.slice/$unit/cpu.stat"; }
  systemctl restart "$unit"; sleep 5
  u0=$(usage) t0=$(date +%s%N)
  sleep "$seconds"
  u1=$(usage) t1=$(date +%s%N)
  bytes=$(stat -c %s /var/lib/prometheus/node-exporter/damon.prom)
  interval=$(systemctl show -P ExecStart "$unit" | sed -n 's/.*--interval \([0-9]*\)ms.*/\1/p')
  echo "$u0 $u1 $t0 $t1 $interval $bytes" | awk '{ refreshes = ($4 - $3) / 1e6 / $5
    printf "{\"refreshes\": %.1f, \"cpu_ms_per_refresh\": %.2f, \"file_bytes\": %d}\n", refreshes, ($2 - $1) / 1000 / refreshes, $6 }'
  exit 0 ;;
cleanup)
  systemctl stop bench-touch.timer bench-true.timer bench-truesbx.timer 2>/dev/null || true
  systemctl stop bench-loopsbx.service 2>/dev/null || true
  rm -f /etc/systemd/system/bench-true.timer /etc/systemd/system/bench-true.service \
    /etc/systemd/system/bench-truesbx.timer /etc/systemd/system/bench-truesbx.service \
    /etc/systemd/system/bench-loopsbx.service /run/bench-loop.py
  systemctl daemon-reload
  exit 0 ;;
esac
mode=$1 seconds=$2 rounds=$3 interval=$4 score=${5:-}
loop='import os, sys, time
while True:
    fd = os.open(sys.argv[1], os.O_RDONLY); os.fstat(fd); os.read(fd, 65); os.close(fd)
    time.sleep(1 - time.monotonic() % 1)'
settle=1
[ "$mode" = timer ] || settle=5
busy() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
lastpid() { awk '{print $5}' /proc/loadavg; }
# last pid wraps only after pid_max; read it before and after
lines() { journalctl -q --since "@$1" --until "@$2" -o cat | wc -l; }
cgroup_us() { awk '/^usage_usec/{print $2}' "/sys/fs/cgroup/system.slice/$1/cpu.stat" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)

phase() { # name start-command stop-command [unit whose own CPU to record]
  sleep 2   # let the previous phase's last tick finish
  eval "$2"
  sleep "$settle"   # a starting daemon's interpreter start-up is not a tick
  t0=$(date +%s) b0=$(busy) p0=$(lastpid) c0=$(cgroup_us "${4:-damos-autotune-feeder.service}")
  sleep "$seconds"
  t1=$(date +%s) b1=$(busy) p1=$(lastpid) c1=$(cgroup_us "${4:-damos-autotune-feeder.service}")
  eval "$3"
  echo "$1 $((t1 - t0)) $((b1 - b0)) $((p1 - p0)) $(lines "$t0" "$t1") $((c1 - c0))" >> /tmp/feeder-bench.raw
}

: > /tmp/feeder-bench.raw
if [ "$mode" = daemon ]; then
  printf '%s\n' "$loop" > /run/bench-loop.py
  feeder_unit=/etc/systemd/system/damos-autotune-feeder.service
  { printf '[Unit]\nDescription=bench: a bare Python loop in the sandbox of the feeder\n[Service]\nType=exec\n'
    grep '^User=' "$feeder_unit"
    printf 'ExecStart=/usr/bin/python3 -I -S /run/bench-loop.py %s\n' "$score"
    sed -n '/^NoNewPrivileges=/,/^\[Install\]/p' "$feeder_unit" | grep -v '^\[Install\]'
  } > /etc/systemd/system/bench-loopsbx.service
  systemctl daemon-reload
fi
systemctl stop damos-autotune-feeder.timer damos-autotune-feeder.service damos-autotune-metrics.service 2>/dev/null || true
r=0
while [ "$r" -lt "$rounds" ]; do
  r=$((r + 1))
  phase idle : :
  if [ "$mode" = timer ]; then
    phase true 'systemctl start bench-true.timer' 'systemctl stop bench-true.timer'
    phase truesbx 'systemctl start bench-truesbx.timer' 'systemctl stop bench-truesbx.timer'
    phase feeder 'systemctl start damos-autotune-feeder.timer' 'systemctl stop damos-autotune-feeder.timer'
  else
    phase feeder 'systemctl start damos-autotune-feeder.service' 'systemctl stop damos-autotune-feeder.service'
    # The least a Python process that wakes every interval and reads the score costs here.
    phase loop "systemd-run -q --unit=bench-loop /usr/bin/python3 -I -S -c '$loop' $score" \
      'systemctl stop bench-loop.service' bench-loop.service
    # The same loop as the score user in the feeder's sandbox (its system-call filter, its
    # namespaces): the least any sandboxed Python feeder can cost a tick here.
    phase loopsbx 'systemctl start bench-loopsbx.service' 'systemctl stop bench-loopsbx.service' bench-loopsbx.service
  fi
done
# Leave the feeder as the role left it.
if [ "$mode" = timer ]; then systemctl start damos-autotune-feeder.timer; else systemctl start damos-autotune-feeder.service; fi

awk -v hz="$hz" -v interval="$interval" -v mode="$mode" -v kernel="$(uname -r)" '
  { secs[$1] += $2; cpu[$1] += $3; pids[$1] += $4; jl[$1] += $5; cg[$1] += $6 }
  END {
    idle_cpu = cpu["idle"] / secs["idle"]; idle_pids = pids["idle"] / secs["idle"]; idle_jl = jl["idle"] / secs["idle"]
    printf "{\"mode\": \"%s\", \"kernel\": \"%s\", \"interval_s\": %s, \"clk_tck\": %d, \"idle_cpu_ms_per_s\": %.2f", mode, kernel, interval, hz, idle_cpu * 1000 / hz
    for (p in secs) {
      if (p == "idle") continue
      # One tick per interval in both modes: a sandboxed unit forks helpers (namespace
      # setup), so new pids do not count ticks.
      ticks = secs[p] / interval
      if (ticks < 1) ticks = 1
      printf ", \"%s\": {\"seconds\": %d, \"ticks\": %.1f, \"new_pids_per_tick\": %.2f, \"cpu_ms_per_tick\": %.2f, \"journal_lines_per_tick\": %.2f", p, secs[p], ticks, (pids[p] - idle_pids * secs[p]) / ticks, (cpu[p] - idle_cpu * secs[p]) * 1000 / hz / ticks, (jl[p] - idle_jl * secs[p]) / ticks
      if (mode == "daemon") printf ", \"own_cpu_ms_per_tick\": %.3f", cg[p] / 1000 / ticks
      printf "}"
    }
    print "}"
  }' /tmp/feeder-bench.raw
