# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One metrics refresh of damos-autotune-metrics.service, taken apart (run as root in a guest
where the damos_autotune role is deployed): the CPU (user + system, this process) of each
step, and the floor of the same sysfs reads done as plainly as Python can (os.open, os.read,
os.close of the same files, no parsing, no formatting, no write). Also the whole facts
(gather_facts, what a refresh read before metrics_facts) for comparison.

    metrics_refresh.py ROUNDS OUT_DIR     prints one JSON object, ms of CPU per refresh
"""

import json
import os
import sys
import time

sys.path.insert(0, '/usr/local/lib/kernel-damon')

from kernel_damon import _damon_host  # noqa: E402
from kernel_damon._damon_facts import gather_facts  # noqa: E402
from kernel_damon._damon_metrics import (  # noqa: E402
    Restarts, metrics_facts, refresh_managed, render, samples, write_textfile)


def cpu_ms(step, rounds):
    start = time.process_time()
    for unused in range(rounds):
        result = step()
    return (time.process_time() - start) * 1000 / rounds, result


def main(rounds, out_dir):
    host = _damon_host.Host()
    restarts = Restarts()
    # Which files one refresh opens, and which directories it lists or looks at.
    opened, listed = [], []
    raw_read, listdir = _damon_host.Host._raw_read, os.listdir

    def counting_read(self, path):
        text = raw_read(self, path)
        opened.append(path)  # read, not only tried (refresh_ms is absent before 6.17)
        return text

    def counting_listdir(path='.'):
        listed.append(path)
        return listdir(path)

    _damon_host.Host._raw_read = counting_read
    os.listdir = counting_listdir
    facts = metrics_facts(host)
    _damon_host.Host._raw_read, os.listdir = raw_read, listdir

    def floor():
        for path in opened:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.read(fd, 4097)
            finally:
                os.close(fd)

    def text():
        return render(samples(facts, time.time(), 15, restarts))

    figures = {'files_read': len(opened), 'directories_listed': len(listed)}
    figures['refresh_stats_ms'] = cpu_ms(lambda: refresh_managed(host), rounds)[0]
    figures['read_ms'] = cpu_ms(lambda: metrics_facts(host), rounds)[0]
    # What a refresh read before metrics_facts(): the whole facts of damos_facts.
    figures['gather_facts_ms'] = cpu_ms(lambda: gather_facts(host, refresh=False), rounds)[0]
    figures['render_ms'], body = cpu_ms(text, rounds)
    figures['write_ms'] = cpu_ms(lambda: write_textfile(out_dir, 'bench.prom', body), rounds)[0]
    # The writer's loop also reads the feeder's settings and state (as root, with the checks a
    # file of another user needs), and then does all of it back to back.
    from damos_autotune import feeder_for_metrics  # the program, beside the core (sys.path above)

    figures['feeder_state_ms'] = cpu_ms(feeder_for_metrics, rounds)[0]

    def whole():
        feeders = feeder_for_metrics()[0]
        write_textfile(out_dir, 'bench.prom', render(samples(metrics_facts(host), time.time(), 15, restarts, feeders)))

    def whole_with_refresh():
        refresh_managed(host)
        whole()

    figures['whole_ms'] = cpu_ms(whole_with_refresh, rounds)[0]
    # The same 1 s apart, as the writer runs (its CPU between refreshes left out).
    spent = 0.0
    for unused in range(10):
        time.sleep(1 - time.time() % 1)
        start = time.process_time()
        whole_with_refresh()
        spent += time.process_time() - start
    figures['whole_1s_apart_ms'] = spent * 100
    figures['floor_reads_ms'] = cpu_ms(floor, rounds)[0]
    figures['file_bytes'] = len(body)
    print(json.dumps({key: round(value, 2) if isinstance(value, float) else value for key, value in figures.items()}))


if __name__ == '__main__':
    main(int(sys.argv[1]), sys.argv[2])
