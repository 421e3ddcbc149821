#!/usr/bin/env python3
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

"""How long one audit decision takes, ours against Watcher's workload_balance.

For clusters of ``--sizes`` compute nodes (20 instances each, one saturated
node per 50) this benchmark

1. starts a real ``influxd`` on 127.0.0.1
   (``watcher_failpredict.datasources.influxdb.local_server``) and
   writes one hour of 10 s collectd-shaped history per cluster, rendered by
   ``watcher_failpredict.datasources.collectd_schema`` and posted as line
   protocol in large batches;
2. trains a small real model (``prediction.training.train`` on a synthetic
   cluster of the same shape) and saves / loads it with
   ``prediction.bundle`` -- not timed;
3. times ``execute()`` (pre_execute, every datasource read, the scoring,
   do_execute, post_execute) of ``predicted_least_failure`` and of Watcher's
   ``workload_balance`` on the same Watcher ``ModelRoot`` (a fresh copy per
   run, built from the same spec) and the same ``InfluxDBDataSource``
   instance, whose per-audit caches are emptied before each run, as a new
   audit would find them;
4. times ``compute_model.to_string()`` alone: Watcher's
   ``BaseStrategy._pre_execute`` builds it eagerly for a debug log line even
   with debug logging off (``workload_balance.post_execute`` builds it a
   second time);
5. prints a table (min / median / max wall time of ``--runs`` runs,
   InfluxDB HTTP requests per audit, the ratio) and the growth of our time
   with the number of nodes, with the targets of issue 2 next to them;
   with ``--mode planned`` (the strategy's default, and this bench's) or
   ``proactive``, our reactive audit runs too,
   on the same data in the same run, and the ratio of the two medians
   says what the mode costs;
6. with ``--backend prometheus``, also loads the same history into a real
   ``prometheus`` on 127.0.0.1 as node_exporter / libvirt exporter series
   (``cluster_data.write_prometheus_history``, ``promtool``) and times our
   audit on the Prometheus datasource, printed beside the InfluxDB row of
   the same run (issue 13's target: at most 2 s median at 1,000 nodes, a
   constant request count).

Progress goes to stderr, the report to stdout. Loopback only.

Usage::

    .venv/bin/python bench/decision_latency.py            # 10,100,1000
    .venv/bin/python bench/decision_latency.py --quick    # 10,50, 1 run
    .venv/bin/python bench/decision_latency.py --backend prometheus
"""

import argparse
import json
import logging
import math
import os
import statistics
import sys
import tempfile
import time

import numpy as np

# bench/ itself is on sys.path when this file runs as a script.
import cluster_data
from watcher_failpredict.datasources.influxdb import local_server

#: Targets of issue 2, printed next to the figures (not asserted).
TARGET_OURS_1000_S = 2.0
#: Instance history written before "now": ours reads max(model window,
#: period) = 600 s of it, workload_balance up to 300 s (aligned to 300 s).
INSTANCE_HISTORY_S = 900
HISTORY_S = 3600
#: After writing a size's history, timed audits wait until influxd has used
#: under SETTLE_CPU_SHARE of a core for SETTLE_WINDOW_S (at most
#: SETTLE_MAX_S), so that a cache snapshot or compaction set off by the bulk
#: write cannot overlap them.
SETTLE_CPU_SHARE = 0.05
SETTLE_WINDOW_S = 2.0
SETTLE_MAX_S = 300


def _cpu_seconds(pid):
    """User + system CPU time of process ``pid`` so far (/proc)."""
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def wait_until_idle(pid, share=None, window=None, limit=None):
    """Wait until ``pid`` uses under ``share`` of a core over ``window``.

    :returns: (seconds waited, share of a core in the last window)
    """
    share = SETTLE_CPU_SHARE if share is None else share
    window = SETTLE_WINDOW_S if window is None else window
    limit = SETTLE_MAX_S if limit is None else limit
    t0 = time.perf_counter()
    while True:
        c0 = _cpu_seconds(pid)
        time.sleep(window)
        busy = (_cpu_seconds(pid) - c0) / window
        waited = time.perf_counter() - t0
        if busy < share or waited >= limit:
            return waited, busy


def log(msg):
    print(f'[{time.strftime("%H:%M:%S")}] {msg}', file=sys.stderr,
          flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Time one audit decision of predicted_least_failure and '
                    'of Watcher\'s workload_balance on the same cluster '
                    'model and the same real InfluxDB.')
    p.add_argument('--sizes', default='10,100,1000',
                   help='comma-separated numbers of compute nodes '
                        '(default: %(default)s)')
    p.add_argument('--runs', type=int, default=3,
                   help='timed audits per strategy and size '
                        '(default: %(default)s)')
    p.add_argument('--skip-workload-balance-above', type=int, default=None,
                   metavar='N',
                   help='do not run workload_balance on clusters of more '
                        'than N nodes (it makes one query per instance: '
                        'about 55 s per audit at 1,000 nodes)')
    p.add_argument('--instances-per-node', type=int, default=20)
    p.add_argument('--model-kind', default='svm',
                   help='kind of the model the strategy scores with (a '
                        'prediction.models.MODEL_KINDS risk kind; default: '
                        '%(default)s, the one the published figures used; '
                        'gbt_peak is watcher-failpredict train\'s default)')
    p.add_argument('--cycle', type=float, default=None, metavar='SECONDS',
                   help='declared load cycle of a gbt_peak_cycle model (at '
                        'most the written history, %d s, plus the horizon): '
                        'its audits also read every host\'s CPU one cycle '
                        'back' % HISTORY_S)
    p.add_argument('--backend', choices=('influxdb', 'prometheus'),
                   default='influxdb',
                   help='prometheus: also time our audit on the same '
                        'history in a real Prometheus (default: '
                        '%(default)s only)')
    p.add_argument('--mode', choices=('reactive', 'proactive', 'planned'),
                   default='planned',
                   help='our strategy\'s mode (default: planned, the '
                        'strategy\'s default; its reactive audit runs too). '
                        'planned also writes every instance\'s history over '
                        'the whole %d s and reads it back as the planner\'s '
                        'history (planner_history)' % HISTORY_S)
    p.add_argument('--planner-granularity', type=int, default=None,
                   metavar='SECONDS',
                   help='with --mode planned: the strategy\'s '
                        'planner_granularity (default: its own, the '
                        'granularity, 10 s)')
    p.add_argument('--json', metavar='FILE',
                   help='also write the results as JSON to FILE')
    p.add_argument('--quick', action='store_true',
                   help='smoke run: sizes 10,50 and 1 run each')
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.runs = '10,50', 1
    try:
        args.sizes = [int(s) for s in args.sizes.split(',') if s.strip()]
    except ValueError:
        p.error(f'--sizes must be integers separated by commas, got '
                f'{args.sizes!r}')
    if not args.sizes or min(args.sizes) < 2:
        p.error('--sizes: every cluster needs at least 2 nodes')
    if args.runs < 1:
        p.error('--runs must be >= 1')
    return args


# -- the model (not timed) ----------------------------------------------------

def synthetic_windows(spec, start, end):
    """ClusterWindows of ``spec``'s hosts, from the generator directly."""
    from watcher_failpredict.datasources import windows as metric_windows
    v = cluster_data.generate_values(spec, start, end)
    total = cluster_data.NODE_MEMORY_MB * 1048576.0
    data = {'cpu': v.host_cpu, 'memory': v.host_memory_used / total * 100,
            'load': v.host_load, 'disk': v.host_disk, 'net': v.host_net}
    names = tuple(spec.hostname(i) for i in range(spec.nodes))
    return metric_windows.ClusterWindows(
        names=names, times=v.times.astype(float), step=cluster_data.STEP,
        data=data, last_seen=np.full(len(names), float(v.times[-1])))


def train_model(workdir, model_kind='svm', cycle=None):
    """Train, save and load a small real model; returns (bundle, info).

    :param cycle: declared load cycle (s), for ``gbt_peak_cycle``: its
        audits then also read every host's CPU that far back
    """
    from watcher_failpredict.prediction import bundle as bundle_mod
    from watcher_failpredict.prediction import training
    # Same shape as the benchmark clusters, other seed: 100 nodes, 2
    # saturated, two hours of 10 s steps.
    spec = cluster_data.ClusterSpec(nodes=100, seed=12345)
    end = time.time() - 86400
    windows = synthetic_windows(spec, end - 7200, end)
    t0 = time.perf_counter()
    bundle, evaluation = training.train(windows, threshold=90.0, period=300,
                                        horizon=300, window=600,
                                        model_kind=model_kind, cycle=cycle)
    path = os.path.join(workdir, 'bench-model.joblib')
    digest = bundle_mod.save_bundle(bundle, path)
    loaded = bundle_mod.load_bundle(path, digest)
    info = {'path': path, 'sha256': digest, 'model_kind': model_kind,
            'train_seconds': round(time.perf_counter() - t0, 2),
            'n_train': evaluation.get('n_train'),
            'roc_auc': (evaluation.get('model') or {}).get('roc_auc')}
    return loaded, info


# -- the strategies -----------------------------------------------------------

def instance_history(args):
    """Seconds of instance history written: the planned mode reads it
    all.
    """
    return HISTORY_S if args.mode == 'planned' else INSTANCE_HISTORY_S


def _struct(**kw):
    from watcher.common import utils
    return utils.Struct(**kw)


def schema_defaults(strategy_cls):
    """input_parameters as Watcher fills them from the schema's defaults."""
    from watcher.common import utils
    params = {}
    utils.StrictDefaultValidatingDraft4Validator(
        strategy_cls.get_schema()).validate(params)
    return params


REMEMBERED_EVERY_S = 60


def remembered_audits(spec, bundle, params, now):
    """An audit memory as continuous audits every REMEMBERED_EVERY_S
    would have left it: a look-ahead and the ranking check's three periods
    of audits, every host scored, so that each timed reactive audit runs
    the check on a full memory (its worst case), never on an empty one.
    """
    from watcher_failpredict.strategies import planned_mode
    from watcher_failpredict.strategies import ranking_check
    memory = ranking_check.AuditMemory()
    keep = ranking_check.keep_seconds(planned_mode.look_ahead_seconds(params),
                                      params['period'])
    key = ranking_check.memory_key(ranking_check.model_key(bundle), params)
    rng = np.random.default_rng(0)
    names = [spec.hostname(i) for i in range(spec.nodes)]
    for at in np.arange(now - keep, now, REMEMBERED_EVERY_S):
        memory.remember(key, float(at), dict(zip(
            names, rng.uniform(0, 100, len(names)).tolist())), dict(zip(
                names, rng.uniform(0, 100, len(names)).tolist())), keep)
    return memory


def make_ours(model, datasource, bundle, mode='reactive',
              planner_granularity=None, memory=None):
    from watcher_failpredict.strategies import predicted_least_failure as plf
    strategy = plf.PredictedLeastFailure(
        _struct(datasources=None, check_optimize_metadata=False),
        datasource=datasource, model_bundle=bundle,
        # Watcher's action table is not part of this benchmark: no past
        # migrations (a real audit adds one small DB query).
        migration_history=lambda since: [])
    if memory is not None:
        strategy.audit_memory = memory
    params = schema_defaults(plf.PredictedLeastFailure)
    params['mode'] = mode
    if mode == 'planned':
        params['planner_history'] = HISTORY_S
        params['planner_granularity'] = planner_granularity
    strategy.input_parameters = _struct(**params)
    strategy.compute_model = model
    return strategy


WB_THRESHOLD = 90.0


def make_workload_balance(model, datasource):
    from watcher.decision_engine.strategy.strategies import workload_balance

    from watcher_failpredict.testbed import policies
    cls = workload_balance.WorkloadBalance
    strategy = cls(_struct(datasources=None))
    params = schema_defaults(cls)
    # Defaults but the threshold: 25 % would call every node overloaded
    # (ours run at 30-50 %), leaving no destination; 90 % -- the failure
    # threshold -- flags exactly the saturated nodes.
    params.update(metrics='instance_cpu_usage', threshold=WB_THRESHOLD)
    strategy.input_parameters = _struct(**params)
    policies.set_audit_inputs(strategy, model, datasource)
    return strategy


def solution_summary(solution):
    moves = [(a['input_parameters'].get('source_node'),
              a['input_parameters'].get('destination_node'))
             for a in solution.actions]
    return moves


def time_audit(make, spec, datasource, label):
    """Build a fresh model and strategy, then time execute() alone."""
    model = cluster_data.build_model(spec)
    strategy = make(model)
    datasource.reset_caches()  # as a new audit finds them
    before = datasource.request_count
    t0 = time.perf_counter()
    solution = strategy.execute()
    elapsed = time.perf_counter() - t0
    requests = datasource.request_count - before
    moves = solution_summary(solution)
    verdict = getattr(strategy, 'ranking_verdict', None)
    checked = '' if verdict is None else \
        f', ranking check judged {verdict.judged} past audits'
    log(f'  {label}: {elapsed:.3f} s, {requests} requests, moves {moves}'
        f'{checked}')
    return elapsed, requests, moves


def time_to_string(spec, runs):
    model = cluster_data.build_model(spec)
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        model.to_string()
        out.append(time.perf_counter() - t0)
    return out


def eager_to_string_avoided():
    """Whether our pre_execute skips the XML when debug logging is off."""
    from watcher_failpredict.strategies import predicted_least_failure as plf
    calls = []

    class Probe:
        stale = False

        def to_string(self):
            calls.append(1)
            return ''

        def get_all_compute_nodes(self):
            raise StopIteration  # stop pre_execute right after the log line

    strategy = make_ours(Probe(), None, None)
    logger = logging.getLogger(plf.LOG.logger.name)
    was = logger.level
    logger.setLevel(logging.INFO)
    try:
        strategy.pre_execute()
    except Exception:
        pass
    finally:
        logger.setLevel(was)
    return not calls


# -- one cluster size ---------------------------------------------------------

def margin_seconds(spec, runs, with_wb):
    """Seconds of future samples to write so no run sees stale metrics.

    Our strategy skips hosts whose latest sample is older than
    ``[failpredict] metrics_max_age`` (120 s); the audits of one size run
    for minutes after "now" of the write, so the history extends past it by
    the expected duration of the write (~0.15 s per node) and of this size's
    runs (workload_balance: ~3-4 ms per instance per run).
    """
    per_run = 0.01 * spec.nodes + (0.004 * spec.instances if with_wb else 0)
    return int(180 + 0.15 * spec.nodes + runs * per_run)


def bench_size(server, bundle, n_nodes, args):
    from watcher_failpredict.datasources import influxdb
    spec = cluster_data.ClusterSpec(nodes=n_nodes,
                                    instances_per_node=args.instances_per_node)
    with_wb = (args.skip_workload_balance_above is None
               or n_nodes <= args.skip_workload_balance_above)
    db = f'bench_{n_nodes}'
    server.create_database(db)
    now = time.time()
    margin = margin_seconds(spec, args.runs, with_wb)
    log(f'{n_nodes} nodes / {spec.instances} instances: writing {HISTORY_S}'
        f' s of host history and {instance_history(args)} s of instance '
        f'history (+{margin} s ahead) into {db}')
    t0 = time.perf_counter()
    last = [0.0]

    def progress(done, total, points):
        if time.perf_counter() - last[0] > 5 or done == total:
            last[0] = time.perf_counter()
            log(f'  wrote hosts {done}/{total}, {points:,} points, '
                f'{time.perf_counter() - t0:.0f} s')

    points = cluster_data.write_history(
        server.url, db, spec, now - HISTORY_S, now + margin,
        now - instance_history(args), progress=progress)
    write_s = time.perf_counter() - t0
    log(f'  {points:,} points in {write_s:.1f} s '
        f'({points / max(write_s, 1e-9):,.0f} points/s)')

    settle_s, busy = wait_until_idle(server.pid)
    log(f'  influxd idle after {settle_s:.0f} s (last {SETTLE_WINDOW_S:g} s:'
        f' {100 * busy:.0f} % of a core)')
    ds = datasource_for(influxdb, server.url, db)
    result = {'nodes': n_nodes, 'instances': spec.instances,
              'saturated_nodes': len(spec.saturated_hosts),
              'points_written': points, 'write_seconds': round(write_s, 1),
              'strategies': {}}
    from watcher_failpredict.strategies import predicted_least_failure as plf
    # remembered up to the moment the timed audits start
    memory = remembered_audits(spec, bundle, schema_defaults(
        plf.PredictedLeastFailure), time.time())
    plan = [('predicted_least_failure',
             lambda m: make_ours(m, ds, bundle, args.mode,
                                 args.planner_granularity, memory))]
    if args.mode != 'reactive':
        # the reactive mode on the same data in the same run: the baseline
        # a mode's cost is a ratio to (this machine is shared and noisy)
        plan.append((REACTIVE_ROW,
                     lambda m: make_ours(m, ds, bundle, 'reactive',
                                         memory=memory)))
    if with_wb:
        plan.append(('workload_balance',
                     lambda m: make_workload_balance(m, ds)))
    for name, make in plan:
        times, reqs, moves, error = [], [], None, None
        for r in range(args.runs):
            try:
                t, q, moves = time_audit(make, spec, ds,
                                         f'{name} run {r + 1}/{args.runs}')
            except Exception as exc:  # reported in the table, not hidden
                error = f'{type(exc).__name__}: {exc}'
                log(f'  {name} run {r + 1}/{args.runs} FAILED: {error}')
                break
            times.append(t)
            reqs.append(q)
        row = {'seconds': times, 'requests': reqs, 'moves': moves or [],
               'error': error}
        if times:
            row.update(min=min(times), median=statistics.median(times),
                       max=max(times))
        result['strategies'][name] = row
    ds.close()
    if args.backend == 'prometheus':
        result['strategies'][PROM_ROW] = bench_prometheus(
            spec, bundle, now, margin, args)
    log(f'  to_string() x{args.runs}')
    result['to_string_seconds'] = time_to_string(spec, args.runs)
    server.query(f'DROP DATABASE "{db}"')
    return result


PROM_ROW = 'ours on Prometheus'
REACTIVE_ROW = 'ours, reactive mode'


def bench_prometheus(spec, bundle, now, margin, args):
    """Our audit on the same history in a real loopback Prometheus."""
    from watcher_failpredict.datasources import prometheus
    from watcher_failpredict.datasources.prometheus import (
        local_server as prom_local_server)
    log('  loading the same history into prometheus (promtool)')
    t0 = time.perf_counter()
    server = prom_local_server.PrometheusServer()
    try:
        samples = cluster_data.write_prometheus_history(
            server, spec, now - HISTORY_S, now + margin,
            now - instance_history(args))
        load_s = time.perf_counter() - t0
        log(f'  {samples:,} samples loaded in {load_s:.1f} s; prometheus '
            f'at {server.url}')
        ds = prometheus.PrometheusDataSource(
            url=server.url, scrape_interval=cluster_data.STEP, timeout=60)
        times, reqs, moves, error = [], [], None, None
        for r in range(args.runs):
            try:
                t, q, moves = time_audit(
                    lambda m: make_ours(m, ds, bundle, args.mode,
                                        args.planner_granularity), spec, ds,
                    f'{PROM_ROW} run {r + 1}/{args.runs}')
            except Exception as exc:  # reported in the table
                error = f'{type(exc).__name__}: {exc}'
                log(f'  {PROM_ROW} run {r + 1} FAILED: {error}')
                break
            times.append(t)
            reqs.append(q)
        ds.close()
    finally:
        server.stop()
    row = {'seconds': times, 'requests': reqs, 'moves': moves or [],
           'error': error, 'samples_loaded': samples,
           'load_seconds': round(load_s, 1)}
    if times:
        row.update(min=min(times), median=statistics.median(times),
                   max=max(times))
    return row


def datasource_for(influxdb, url, db):
    """Our InfluxDB datasource pointed at ``db`` on the benchmark server."""
    return influxdb.InfluxDBDataSource(
        url=url, database=db, cpu_form='percent',
        instance_metrics=cluster_data.INSTANCE_FORM)


# -- report -------------------------------------------------------------------

def _fmt_s(x):
    return f'{x:7.3f}' if x is not None else '      -'


def report(results, args, model_info, avoided):
    out = []
    w = out.append
    w('Decision latency: one audit decision (strategy execute(), every '
      'datasource read and the scoring), real InfluxDB 1.6 on loopback.')
    w(f'Runs per cell: {args.runs}. Cluster: {args.instances_per_node} '
      f'instances per node, one saturated node per '
      f'{cluster_data.SATURATE_EVERY}; {HISTORY_S} s of 10 s host history, '
      f'{instance_history(args)} s of instance history. Our mode: '
      f'{args.mode}' + (f', planner_granularity {args.planner_granularity} s'
                        if args.planner_granularity else '') + '.')
    w(f'Model: {model_info["model_kind"]}, {model_info["n_train"]} '
      f'training samples, held-out ROC AUC {model_info["roc_auc"]}, '
      f'sha256 {model_info["sha256"][:12]}... '
      f'(training not timed). workload_balance: schema defaults, metrics '
      f'instance_cpu_usage, threshold {WB_THRESHOLD:g}.')
    w('')
    hdr = (f'{"nodes":>6} {"instances":>9}  {"strategy":<24} {"min s":>7} '
           f'{"median s":>8} {"max s":>7} {"requests":>8} {"moves":>5}  '
           f'{"ratio":>7}')
    w(hdr)
    w('-' * len(hdr))
    w('(ratio: workload_balance\'s median over ours' + (
        f'; on the "{REACTIVE_ROW}" rows, our {args.mode} audit\'s median '
        f'over the reactive one\'s, same data, same run)'
        if args.mode != 'reactive' else ')'))
    for res in results:
        s = res['strategies']
        ours = s.get('predicted_least_failure')
        wb = s.get('workload_balance')
        for name in ('predicted_least_failure', REACTIVE_ROW, PROM_ROW,
                     'workload_balance'):
            row = s.get(name)
            if row is None and name in (PROM_ROW, REACTIVE_ROW):
                continue
            if row is None:
                w(f'{res["nodes"]:>6} {res["instances"]:>9}  {name:<24} '
                  f'{"skipped (--skip-workload-balance-above)":>40}')
                continue
            if row.get('error'):
                w(f'{res["nodes"]:>6} {res["instances"]:>9}  {name:<24} '
                  f'FAILED after {len(row["seconds"])} good run(s): '
                  f'{row["error"][:160]}')
                continue
            reqs = sorted(set(row['requests']))
            req_txt = str(reqs[0]) if len(reqs) == 1 else \
                '/'.join(map(str, row['requests']))
            ratio = ''
            if name == 'workload_balance' and ours and 'median' in ours:
                ratio = f'{row["median"] / ours["median"]:7.1f}x'
            if name == REACTIVE_ROW and ours and 'median' in ours:
                # how much the mode costs over the default, same data
                ratio = f'{ours["median"] / row["median"]:7.2f}x'
            w(f'{res["nodes"]:>6} {res["instances"]:>9}  {name:<24} '
              f'{_fmt_s(row["min"])} {row["median"]:8.3f} '
              f'{_fmt_s(row["max"])} {req_txt:>8} {len(row["moves"]):>5}  '
              f'{ratio:>7}')
        del wb
    w('')

    # -- growth of our time with the cluster
    ok = [r for r in results
          if not r['strategies']['predicted_least_failure'].get('error')]
    sizes = [r['nodes'] for r in ok]
    med = [r['strategies']['predicted_least_failure']['median'] for r in ok]
    w('Our time per node and its growth:')
    for n, t in zip(sizes, med):
        w(f'  {n:>6} nodes: {t:.3f} s median = {1000 * t / n:.3f} ms per node')
    slopes = []
    for (n0, t0), (n1, t1) in zip(zip(sizes, med), zip(sizes[1:], med[1:])):
        marginal = (t1 - t0) / (n1 - n0) * 1000
        expo = math.log(t1 / t0) / math.log(n1 / n0) if t0 > 0 else float(
            'nan')
        slopes.append(expo)
        w(f'  {n0}->{n1}: {marginal:+.3f} ms per added node; time x'
          f'{t1 / t0:.2f} for nodes x{n1 / n0:g} (log-log slope '
          f'{expo:.2f}; 1.00 = linear)')
    w('')

    # -- to_string share
    w('Watcher BaseStrategy._pre_execute: LOG.debug(compute_model.to_string())'
      ' builds the XML even with debug logging off (workload_balance\'s '
      'post_execute builds it once more):')
    for res in results:
        ts = res['to_string_seconds']
        tm = statistics.median(ts)
        line = f'  {res["nodes"]:>6} nodes: to_string() {tm:.3f} s median'
        wb = res['strategies'].get('workload_balance')
        if wb and 'median' in wb:
            line += (f' = {100 * 2 * tm / wb["median"]:.1f} % of '
                     f'workload_balance\'s audit (2 calls)')
        w(line)
    w(f'  predicted_least_failure avoids it (builds it only when debug '
      f'logging is on): {"yes" if avoided else "NO"}')
    w('')

    # -- targets
    w('Targets (issue 2), not asserted:')
    big = [r for r in results if r['nodes'] >= 1000]
    if big and big[0]['strategies']['predicted_least_failure'].get('error'):
        w(f'  ours at most {TARGET_OURS_1000_S:g} s at 1,000 nodes: NOT met '
          f'(the audit failed)')
    elif big:
        t = big[0]['strategies']['predicted_least_failure']['median']
        verdict = 'met' if t <= TARGET_OURS_1000_S else 'NOT met'
        w(f'  ours at most {TARGET_OURS_1000_S:g} s at 1,000 nodes: '
          f'{t:.3f} s median -> {verdict}')
    else:
        w(f'  ours at most {TARGET_OURS_1000_S:g} s at 1,000 nodes: not '
          f'measured (largest size {max(r["nodes"] for r in results)})')
    all_reqs = sorted({q for r in results for q in
                       r['strategies']['predicted_least_failure']['requests']})
    w(f'  request count constant across sizes: ours made {all_reqs} -> '
      f'{"met" if len(all_reqs) == 1 else "NOT met"}')
    if slopes:
        worst = max(slopes)
        w(f'  time growing no faster than linearly: worst log-log slope '
          f'{worst:.2f} -> {"met" if worst <= 1.05 else "NOT met"}')
    prom = [r for r in results if PROM_ROW in r['strategies']]
    if prom:
        w('Targets (issue 13, Prometheus), not asserted:')
        big = [r for r in prom if r['nodes'] >= 1000]
        row = big[0]['strategies'][PROM_ROW] if big else None
        if row is None:
            w(f'  ours on Prometheus at most {TARGET_OURS_1000_S:g} s at '
              f'1,000 nodes: not measured')
        elif row.get('error') or 'median' not in row:
            w('  ours on Prometheus at 1,000 nodes: NOT met (failed)')
        else:
            verdict = ('met' if row['median'] <= TARGET_OURS_1000_S
                       else 'NOT met')
            w(f'  ours on Prometheus at most {TARGET_OURS_1000_S:g} s at '
              f'1,000 nodes: {row["median"]:.3f} s median -> {verdict}')
        reqs = sorted({q for r in prom
                       for q in r['strategies'][PROM_ROW]['requests']})
        w(f'  request count constant across sizes: {reqs} -> '
          f'{"met" if len(reqs) == 1 else "NOT met"}')
        same = all(r['strategies'][PROM_ROW]['moves']
                   == r['strategies']['predicted_least_failure']['moves']
                   for r in prom)
        w(f'  same moves as on InfluxDB at every size: '
          f'{"yes" if same else "NO"}')
    return '\n'.join(out)


def main(argv=None):
    args = parse_args(argv)
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix='failpredict-bench-') as work:
        log('training the benchmark model (not timed)')
        bundle, model_info = train_model(work, args.model_kind, args.cycle)
        log(f'  model trained in {model_info["train_seconds"]} s, sha256 '
            f'{model_info["sha256"]}')
        avoided = eager_to_string_avoided()
        log('starting influxd on 127.0.0.1')
        server = local_server.InfluxDBServer().start()
        try:
            log(f'  influxd at {server.url}')
            results = [bench_size(server, bundle, n, args)
                       for n in args.sizes]
        finally:
            server.stop()
    text = report(results, args, model_info, avoided)
    print(text)
    log(f'done in {time.perf_counter() - t_start:.0f} s')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'args': {'sizes': args.sizes, 'runs': args.runs,
                                'instances_per_node':
                                    args.instances_per_node},
                       'model': model_info,
                       'to_string_avoided_by_ours': avoided,
                       'results': results}, f, indent=2, default=str)
    return 0


if __name__ == '__main__':
    sys.exit(main())
