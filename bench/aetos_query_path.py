#!/usr/bin/env python
# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Range queries vs the Aetos path (GET instant subqueries), one server.

Loads ``--hosts`` hosts x 1 h of node_exporter series at 10 s (random
CPU, memory, load) into a real prometheus on 127.0.0.1 (promtool), then
reads every host's windows of the 5 host metrics over ``--period``
seconds, ``--runs`` times on each path: POSTed ``query_range`` (what
``datasource = prometheus`` sends) and ``GET /api/v1/query`` subqueries
(what ``datasource = aetos`` sends, Aetos 3.0.0 serving nothing else).
Prints the seconds of each read, the requests per read, and whether both
paths give the same windows. Aetos' own proxying is not in the figure.

    .venv/bin/python bench/aetos_query_path.py --hosts 1000
"""

import argparse
import time

import numpy as np

from watcher_failpredict.datasources import prometheus
from watcher_failpredict.datasources.prometheus import exporter_schema
from watcher_failpredict.datasources.prometheus import local_server
from watcher_failpredict.datasources import windows as w

STEP = 10
T0 = 1_700_000_000


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--hosts', type=int, default=1000)
    p.add_argument('--period', type=int, default=600)
    p.add_argument('--runs', type=int, default=2)
    args = p.parse_args(argv)
    times = np.arange(T0 - 3600, T0, STEP, dtype=float)
    rng = np.random.default_rng(1)
    n = times.size
    chunks = [''.join(local_server.openmetrics_lines(
        exporter_schema.host_series(
            f'h{i}', times, rng.uniform(0, 100, n), rng.uniform(0, 100, n),
            rng.uniform(0, 4, n), np.full(n, 1e5), np.full(n, 1e4),
            loopback=False)))
        for i in range(args.hosts)] + ['# EOF\n']
    server = local_server.PrometheusServer()
    try:
        t = time.monotonic()
        server.load_chunks(chunks)
        server.start()
        print(f'{args.hosts} hosts x 1 h at {STEP} s loaded in '
              f'{time.monotonic() - t:.0f} s')
        names = tuple(f'h{i}' for i in range(args.hosts))
        last = {}
        for instant_only, label in ((False, 'POST query_range'),
                                    (True, 'GET subqueries (Aetos)')):
            seconds = []
            for _run in range(args.runs):
                ds = prometheus.PrometheusDataSource(
                    url=server.url, scrape_interval=STEP, retries=0,
                    timeout=120, instant_only=instant_only)
                t = time.monotonic()
                last[instant_only] = ds.cluster_windows(
                    w.COMPUTE_NODE, names, args.period, STEP, end=T0 - 1)
                seconds.append(time.monotonic() - t)
                ds.close()
            print(f'{label:24s} seconds: '
                  f'{" ".join(f"{s:.2f}" for s in seconds)}  requests per '
                  f'read: {ds.request_count}')
        same = all(np.allclose(last[False].data[m], last[True].data[m],
                               equal_nan=True) for m in w.HOST_METRICS)
        print(f'same windows on both paths: {same}')
        return 0 if same else 1
    finally:
        server.stop()


if __name__ == '__main__':
    raise SystemExit(main())
