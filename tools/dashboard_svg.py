# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Draw a Grafana dashboard's time series panels from a real Prometheus as one static SVG
(the README's picture of docs/grafana/damon-autotune.json on the test fleet).

  python3 tools/dashboard_svg.py URL DASHBOARD.json OUT.svg [--minutes N] [--instances a,b] [--title T]

Each time series panel's queries run over the last N minutes (query_range, ~120 points),
with Grafana's variables filled in as tests/.../promql_check.py does; stat panels are left
out.  Standard library only.
"""

import argparse
import importlib.util
import json
import os
import sys
import time
from xml.sax.saxutils import escape

HERE = os.path.dirname(os.path.abspath(__file__))
CHECK = os.path.join(HERE, '..', 'tests', 'integration', 'targets', 'damos_autotune', 'files', 'promql_check.py')
PALETTE = ('#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf')
WIDTH, HEIGHT, PAD_LEFT, PAD_TOP, PAD_BOTTOM = 460, 230, 62, 30, 58


def load_check():
    spec = importlib.util.spec_from_file_location('promql_check', CHECK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def human(value, unit):
    if unit == 'bytes' or unit == 'Bps':
        for scale, name in ((2 ** 30, 'GiB'), (2 ** 20, 'MiB'), (2 ** 10, 'KiB')):
            if abs(value) >= scale:
                return '%.3g %s%s' % (value / scale, name, '/s' if unit == 'Bps' else '')
        return '%.3g B%s' % (value, '/s' if unit == 'Bps' else '')
    if unit == 'percentunit':
        return '%.3g%%' % (value * 100)
    if unit == 's':
        return '%.3g s' % value
    return '%.6g' % value


def legend(metric, template):
    text = template or ''
    for key, value in metric.items():
        text = text.replace('{{%s}}' % key, value)
    return text or ','.join('%s=%s' % item for item in sorted(metric.items()))


def chart(x0, y0, panel, lines, start, end):
    """SVG elements of one small chart at (x0, y0): lines [(label, [(t, v)])]."""
    unit = panel.get('fieldConfig', {}).get('defaults', {}).get('unit', 'short')
    values = [v for unused, points in lines for unused, v in points] or [0.0]
    low, high = min(*values, 0.0), max(values)
    if high <= low:
        high = low + 1
    plot_w, plot_h = WIDTH - PAD_LEFT - 10, HEIGHT - PAD_TOP - PAD_BOTTOM
    out = ['<text x="%d" y="%d" font-size="13" font-weight="bold">%s</text>' % (x0 + 4, y0 + 18, escape(panel['title'])),
           '<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#bbb"/>' % (
               x0 + PAD_LEFT, y0 + PAD_TOP, plot_w, plot_h)]
    for fraction in (0.0, 0.5, 1.0):
        y = y0 + PAD_TOP + plot_h * (1 - fraction)
        out.append('<text x="%d" y="%.1f" font-size="10" text-anchor="end">%s</text>' % (
            x0 + PAD_LEFT - 4, y + 3, escape(human(low + (high - low) * fraction, unit))))
    minutes = (end - start) / 60
    for fraction, anchor in ((0.0, 'start'), (0.5, 'middle'), (1.0, 'end')):
        x = x0 + PAD_LEFT + plot_w * fraction
        shown = 'now' if fraction == 1.0 else '-%.0f min' % (minutes * (1 - fraction))
        out.append('<text x="%.1f" y="%d" font-size="10" text-anchor="%s">%s</text>' % (
            x, y0 + PAD_TOP + plot_h + 12, anchor, shown))
    for index, (label, points) in enumerate(lines[:len(PALETTE)]):
        colour = PALETTE[index]
        path = ' '.join('%.1f,%.1f' % (x0 + PAD_LEFT + plot_w * (t - start) / (end - start),
                                       y0 + PAD_TOP + plot_h * (1 - (v - low) / (high - low))) for t, v in points)
        out.append('<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>' % (colour, path))
        ly = y0 + PAD_TOP + plot_h + 24 + 11 * (index % 3)
        lx = x0 + PAD_LEFT + (index // 3) * 200
        out.append('<rect x="%d" y="%d" width="10" height="3" fill="%s"/>' % (lx, ly - 4, colour))
        out.append('<text x="%d" y="%d" font-size="9">%s</text>' % (lx + 14, ly, escape(label[:40])))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('url')
    parser.add_argument('dashboard')
    parser.add_argument('out')
    parser.add_argument('--minutes', type=float, default=10)
    parser.add_argument('--instances', type=lambda text: [name for name in text.split(',') if name])
    parser.add_argument('--title', default='')
    args = parser.parse_args(argv)
    check = load_check()
    with open(args.dashboard, encoding='utf-8') as handle:
        dashboard = json.load(handle)
    end = time.time()
    start = end - args.minutes * 60
    step = max(1.0, (end - start) / 120)
    window = '%ds' % max(4 * step, 30)
    charts = []
    for panel in check.panels(dashboard):
        if panel.get('type') != 'timeseries':
            continue
        lines = []
        for target in panel['targets']:
            expr = check.fill(target['expr'], args.instances, window)
            for series in check.get(args.url, '/api/v1/query_range', query=expr, start=start, end=end,
                                    step=step)['result']:
                lines.append((legend(series['metric'], target.get('legendFormat')),
                              [(float(t), float(v)) for t, v in series['values']]))
        charts.append((panel, lines))
    rows = (len(charts) + 1) // 2
    top = 36 if args.title else 6
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif">' % (
        2 * WIDTH, top + rows * HEIGHT), '<rect width="100%" height="100%" fill="white"/>']
    if args.title:
        out.append('<text x="8" y="22" font-size="15" font-weight="bold">%s</text>' % escape(args.title))
    for index, (panel, lines) in enumerate(charts):
        out += chart((index % 2) * WIDTH, top + (index // 2) * HEIGHT, panel, lines, start, end)
    out.append('</svg>')
    with open(args.out, 'w', encoding='utf-8') as handle:
        handle.write('\n'.join(out) + '\n')
    print('%s: %d panels' % (args.out, len(charts)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
