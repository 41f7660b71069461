#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, kernel.damon contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Check a Grafana dashboard's queries, or one query, against a real Prometheus.

  promql_check.py URL DASHBOARD.json [--instances a,b] [--require-data]
      the dashboard's structure (titles, ${DS_PROMETHEUS}, the instance variable), then every
      panel's expressions, with Grafana's variables filled in: each must be valid PromQL; with
      --require-data each must find series, and every listed instance must appear among those
      whose results carry an instance label (an aggregation without one need only find some)
  promql_check.py URL --query EXPR [--instances a,b] [--expect-min N] [--expect-max N]
      one query: prints its result; it must find series, within the bounds, of every listed instance

Exit 0 when everything holds, 1 otherwise.  Standard library only.  tools/dashboard_svg.py
reuses panels(), fill() and get().
"""

import argparse
import json
import math
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

TIMEOUT_S = 10
DATASOURCE_UID = '${DS_PROMETHEUS}'


class Unreachable(RuntimeError):
    """Prometheus did not answer (as opposed to answering with an error)."""


def all_panels(dashboard):
    """Every panel, rows' nested panels included."""
    for panel in dashboard.get('panels', []):
        yield panel
        yield from all_panels(panel)


def panels(dashboard):
    """Every panel with queries."""
    return (panel for panel in all_panels(dashboard) if panel.get('targets'))


def title_of(panel):
    return panel.get('title') or 'panel %s' % panel.get('id')


def structure_problems(dashboard):
    problems = []
    variables = dashboard.get('templating', {}).get('list', [])
    if 'instance' not in [variable.get('name') for variable in variables]:
        problems.append('the dashboard has no "instance" variable')
    for panel in all_panels(dashboard):
        name = title_of(panel)
        if not panel.get('title'):
            problems.append('%s has no title' % name)
        if panel.get('type') == 'row':
            continue
        for item in [panel] + panel.get('targets', []):
            if (item.get('datasource') or {}).get('uid') != DATASOURCE_UID:
                problems.append('%s: datasource is %s, not %s' % (name, item.get('datasource'), DATASOURCE_UID))
    return problems


def fill(expr, instances=None, window='1m'):
    """Grafana's variables filled in: $instance by the instances' regex (as Grafana escapes a
    multi-value variable: backslashes doubled inside PromQL's quotes), intervals by window."""
    if instances:
        pattern = '|'.join(re.escape(name).replace('\\', '\\\\') for name in instances)
    else:
        pattern = '.*'
    for name in ('__rate_interval', '__interval', '__range'):
        expr = expr.replace('${%s}' % name, window).replace('$' + name, window)
    return expr.replace('${instance}', pattern).replace('$instance', pattern)


def get(url, path, **params):
    """Prometheus' JSON answer's data; RuntimeError with its error, Unreachable without an answer."""
    address = '%s%s?%s' % (url.rstrip('/'), path, urllib.parse.urlencode(params))
    try:
        with urllib.request.urlopen(address, timeout=TIMEOUT_S) as answer:
            body = json.load(answer)
    except urllib.error.HTTPError as err:  # Prometheus answers 400 and 422 with its error as JSON
        try:
            body = json.load(err)
        except ValueError:
            raise Unreachable("HTTP %d from %s: not Prometheus' API" % (err.code, address)) from None
    except (OSError, ValueError) as err:
        raise Unreachable('cannot query %s: %s' % (url, getattr(err, 'reason', err))) from None
    if not isinstance(body, dict) or body.get('status') != 'success':
        body = body if isinstance(body, dict) else {}
        raise RuntimeError('%s: %s' % (body.get('errorType', 'error'), body.get('error', 'no success status')))
    return body['data']


def series_of(data):
    """An instant query's result as a list of series (a scalar is one series without labels)."""
    if data['resultType'] in ('scalar', 'string'):
        return [{'metric': {}, 'value': data['result']}]
    return data['result']


def problem_of(result, instances, require_data, low=None, high=None):
    """What is wrong with an instant query's series, or None."""
    if not require_data:
        return None
    if not result:
        return 'no series'
    found = {series['metric'].get('instance') for series in result}
    missing = sorted(set(instances or []) - found)
    if missing and found != {None}:
        return 'no series of %s (found %s)' % (', '.join(missing), ', '.join(sorted(map(str, found))))
    if low is None and high is None:
        return None
    low, high = -math.inf if low is None else low, math.inf if high is None else high
    for series in result:
        if not low <= float(series['value'][1]) <= high:  # NaN is outside too
            return '%s = %s is outside [%g, %g]' % (json.dumps(series['metric']), series['value'][1], low, high)
    return None


def check_query(args):
    try:
        result = series_of(get(args.url, '/api/v1/query', query=args.query))
    except RuntimeError as err:
        print('FAIL %s: %s' % (args.query, err))
        return 1
    print(json.dumps(result, separators=(',', ':')))
    problem = problem_of(result, args.instances, True, args.expect_min, args.expect_max)
    if problem:
        print('FAIL %s: %s' % (args.query, problem))
    return 1 if problem else 0


def check_dashboard(args):
    with open(args.dashboard, encoding='utf-8') as handle:
        dashboard = json.load(handle)
    failed = structure_problems(dashboard)
    for problem in failed:
        print('FAIL %s' % problem)
    checked = 0
    for panel in panels(dashboard):
        for target in panel['targets']:
            expr = fill(target.get('expr', ''), args.instances)
            checked += 1
            try:
                result = series_of(get(args.url, '/api/v1/query', query=expr))
            except Unreachable as err:
                print('FAIL %s' % err)
                return 1
            except RuntimeError as err:
                problem = str(err)
            else:
                problem = problem_of(result, args.instances, args.require_data)
            if problem:
                failed.append(problem)
                print('FAIL %s: %s: %s' % (title_of(panel), expr, problem))
            else:
                print('ok  %s: %d series' % (title_of(panel), len(result)))
    print('%s: %d expressions checked, %d problems' % (args.dashboard, checked, len(failed)))
    return 1 if failed else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('url', help='Prometheus, e.g. http://127.0.0.1:9090')
    parser.add_argument('dashboard', nargs='?', help="a Grafana dashboard's JSON")
    parser.add_argument('--query', help='check this one expression instead')
    parser.add_argument('--instances', type=lambda text: [name for name in text.split(',') if name],
                        help='comma-separated instance labels that must all be found')
    parser.add_argument('--require-data', action='store_true', help="every dashboard query must find series")
    parser.add_argument('--expect-min', type=float)
    parser.add_argument('--expect-max', type=float)
    args = parser.parse_args(argv)
    if (args.dashboard is None) == (args.query is None):
        parser.error('give either a dashboard or --query')
    if args.query is None and (args.expect_min is not None or args.expect_max is not None):
        parser.error('--expect-min and --expect-max go with --query')
    return check_query(args) if args.query is not None else check_dashboard(args)


if __name__ == '__main__':
    sys.exit(main())
