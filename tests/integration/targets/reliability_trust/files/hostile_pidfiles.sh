#!/bin/sh
# Pidfiles a local user could leave where root reads them: a FIFO, /dev/zero, a dangling
# symlink, and a pidfile that user owns holding the pid of another user's process.
# Prints the pid of that other user's process. Test hosts only.
set -eu
d=/var/lib/kd-test-pidfiles
rm -rf $d
mkdir -m 0755 $d
mkfifo $d/fifo
ln -s $d/nothing-here $d/dangling
# A long-lived process of root's (not nobody's), and a pidfile nobody owns naming it.
systemd-run --quiet --unit kd-test-victim sleep 600 >/dev/null 2>&1 || true
pid=$(systemctl show -p MainPID --value -- kd-test-victim.service)
echo "$pid" > $d/other
chown nobody $d/other
echo "$pid"
