#!/bin/sh
# No hostile user (hostile_user.py) left from an earlier run that failed halfway. Test hosts only.
systemctl stop kd-test-hostile.service 2>/dev/null || true
systemctl reset-failed kd-test-hostile.service 2>/dev/null || true
rm -f /run/lock/kernel-damon.lock /var/tmp/kd-hostile.json /var/tmp/kd-planted-*
