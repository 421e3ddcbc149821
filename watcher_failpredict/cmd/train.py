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

"""``watcher-failpredict train``: fit a model bundle on collectd history.

The history comes from InfluxDB (``--influxdb``, ``--database``), from
Prometheus (``--prometheus``: node_exporter series) or from a trace set
(``--trace``); the model is evaluated on the later part of it
(time-ordered, never shuffled), the bundle written atomically and the
``[failpredict]`` lines to paste into ``watcher.conf`` printed.
"""

import argparse
import datetime
import math
import os
import re
import tempfile
import time

import numpy as np

from watcher_failpredict.cmd import common
from watcher_failpredict import conf
from watcher_failpredict.datasources import deadline as deadline_mod
from watcher_failpredict.datasources import influxdb
from watcher_failpredict.datasources import prometheus
from watcher_failpredict.datasources.prometheus import aetos
from watcher_failpredict.datasources.prometheus import query
from watcher_failpredict.datasources import windows as metric_windows
from watcher_failpredict.prediction import bundle as bundle_mod
from watcher_failpredict.prediction import evaluation
from watcher_failpredict.prediction import migration_time
from watcher_failpredict.prediction import models
from watcher_failpredict.prediction import traces
from watcher_failpredict.prediction import training

#: Longest history --since may ask for (366 days).
MAX_SINCE = 366 * 86400
SINCE_WHY = ('the whole history is held in memory and trained on at once, '
             'and a year already covers every daily, weekly and seasonal '
             'load cycle the model can learn')

#: Longest --chunk-deadline (1 h) and --deadline (1 week).
MAX_CHUNK_DEADLINE = 3600
MAX_DEADLINE = 7 * 86400
DEADLINE_WHY = ('a longer read is better split: read less at once '
                '(--chunk, --since, --hosts)')


def deadline_seconds(maximum):
    """An argparse type: a duration (see common.parse_duration) of 1 s to
    ``maximum``.
    """
    at_most = common.duration_at_most(maximum, DEADLINE_WHY)

    def parse(text):
        seconds = at_most(text)
        if seconds < 1:
            raise argparse.ArgumentTypeError(
                f'{text!r} is less than the minimum 1 s')
        return seconds
    return parse


_UUID = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-'
                   r'[0-9a-f]{12}$', re.IGNORECASE)


def add_parser(subparsers):
    t = subparsers.add_parser(
        'train', allow_abbrev=False,
        help='train a model bundle from InfluxDB or Prometheus history',
        description='Read the compute hosts\' history from InfluxDB '
                    '(collectd) or Prometheus (node_exporter), train a '
                    'model on its earlier part, evaluate '
                    'it on the later part (time-ordered, never shuffled) '
                    'and write the bundle atomically.')
    src = t.add_argument_group('InfluxDB')
    src.add_argument('--influxdb', metavar='URL', type=common.influxdb_url,
                     help='InfluxDB 1.x base URL, e.g. http://127.0.0.1:8086 '
                          '(required unless --prometheus or --trace; no '
                          'user:password@)')
    src.add_argument('--database', metavar='DB',
                     help='database the collectd input writes into '
                          '(required unless --trace)')
    common.add_influxdb_credentials(src)
    src.add_argument('--cpu-form', choices=('percent', 'jiffies'),
                     default='percent',
                     help='how collectd reports CPU (default: percent)')
    src.add_argument('--timeout', type=common.positive_float, default=60.0,
                     help='seconds per InfluxDB or Prometheus request '
                          '(default: 60)')
    src.add_argument('--chunk', type=common.parse_duration, default=3600,
                     help='history read per request (default: 1h)')
    src.add_argument('--chunk-deadline', metavar='DURATION', default=300,
                     type=deadline_seconds(MAX_CHUNK_DEADLINE),
                     help='wall-clock time one chunk\'s read (and the host '
                          'listing) may take in all, retries included, '
                          'however slowly the server answers (default: '
                          '300 s, 1 s to 1h)')
    src.add_argument('--deadline', metavar='DURATION', default=4 * 3600,
                     type=deadline_seconds(MAX_DEADLINE),
                     help='wall-clock time the whole history read (host '
                          'listing and every chunk, not the training) may '
                          'take (default: 4h, 1 s to 1w)')
    src.add_argument('--hosts', metavar='H1,H2',
                     help='collectd host names to train on (default: every '
                          'host reporting CPU, UUID-named series, i.e. VNF '
                          'instances, excluded)')
    prom = t.add_argument_group('Prometheus')
    prom.add_argument('--prometheus', metavar='URL',
                      type=common.prometheus_url,
                      help='Prometheus base URL (before /api/v1), e.g. '
                           'http://127.0.0.1:9090: read node_exporter '
                           'series instead of InfluxDB')
    prom.add_argument('--aetos', metavar='URL', nargs='?', const='',
                      type=lambda text: text and common.aetos_url(text),
                      help='read the same series through Aetos with a '
                           'Keystone token (--os-* options): at URL (before '
                           '/api/v1), or, with no URL, at the catalogue\'s '
                           'metric-storage endpoint')
    prom.add_argument('--schema', choices=query.SCHEMAS, default=None,
                      help='whose series: "exporters" (node_exporter) or '
                           '"collectd" (write_prometheus) (default: '
                           '[failpredict] prometheus_schema, exporters)')
    prom.add_argument('--host-label', metavar='LABEL', default=None,
                      help='label naming the host (default: [failpredict] '
                           'prometheus_host_label, fqdn)')
    prom.add_argument('--scrape-interval', type=common.positive_float,
                      default=None, metavar='SECONDS',
                      help='the node job\'s scrape interval (default: '
                           '[failpredict] prometheus_scrape_interval)')
    common.add_keystone_options(t.add_argument_group(
        'Keystone (--aetos)'))
    span = t.add_argument_group('history')
    span.add_argument('--since', default=86400,
                      type=common.duration_at_most(MAX_SINCE, SINCE_WHY),
                      help='history length ending at --until (default: '
                           '24h, at most 366d)')
    span.add_argument('--until', type=common.parse_time, default=None,
                      help='end of the history, Unix seconds or ISO 8601 '
                           '(default: now)')
    span.add_argument('--granularity', type=common.positive_int, default=10,
                      help='seconds per step; must match the strategy\'s '
                           'granularity (default: 10)')
    mdl = t.add_argument_group('model')
    mdl.add_argument('--threshold', type=float, default=90.0,
                     help='failure state: mean CPU %% over --period at or '
                          'above this (default: 90)')
    mdl.add_argument('--period', type=common.parse_duration, default=300,
                     help='trigger period (default: 300 s)')
    mdl.add_argument('--horizon', type=common.parse_duration, default=None,
                     help='predict failures this far ahead (default: auto, '
                          'the estimated live migration of a '
                          '--reference-memory VNF at full CPU plus '
                          '[failpredict] migration_margin, in whole steps: '
                          'what matters is the destination\'s state when '
                          'the migration completes)')
    mdl.add_argument('--reference-memory', type=common.positive_int,
                     default=1024, metavar='MIB',
                     help='memory of the VNF the automatic horizon is sized '
                          'for (default: 1024 MiB, the paper\'s VNFs)')
    mdl.add_argument('--window', type=common.parse_duration, default=600,
                     help='feature window (default: 600 s)')
    mdl.add_argument('--model-kind', choices=models.MODEL_KINDS,
                     default='gbt_peak',
                     help='gbt_peak (default): probability that the future '
                          'peak CPU, forecast by gradient-boosted trees, '
                          'crosses the threshold; gbt: calibrated '
                          'gradient-boosted classifier; svm: the paper\'s '
                          'RBF SVM (subsampled); svm_nystroem: the SVM made '
                          'to scale; gbt_peak_cycle: gbt_peak also shown '
                          'each host\'s last load cycle and its simple '
                          'forecasters\' recent errors (one more metrics '
                          'read per audit); all score any host. '
                          'fixed_hosts: the paper\'s which-server '
                          'classifier, for evaluation only (doc: models)')
    mdl.add_argument('--test-fraction', type=float, default=0.25,
                     help='latest share of the history held out for '
                          'evaluation (default: 0.25)')
    mdl.add_argument('--max-samples', type=common.positive_int,
                     default=models.DEFAULT_MAX_SAMPLES,
                     help='training subsample cap of the svm kind; SVC fit '
                          'time grows quadratically or worse (default: '
                          '%(default)s)')
    mdl.add_argument('--stride', type=common.positive_int, default=1,
                     help='use every n-th time step as a sample (default: 1)')
    mdl.add_argument('--seed', type=int, default=0, help='random seed')
    common.add_trace_options(t)
    mdl.add_argument('--cycle', type=common.parse_duration, default=None,
                     help='load cycle for the gbt cycle-position features, '
                          'and every host\'s cycle for gbt_peak_cycle '
                          '(default: none, gbt_peak_cycle then estimates '
                          'each host\'s from the history; traces: their '
                          'own)')
    mdl.add_argument('--cost-false-migration', type=float,
                     default=models.DEFAULT_COST_FALSE_MIGRATION,
                     help='cost of a needless migration (default: '
                          '%(default)s)')
    mdl.add_argument('--cost-missed-failure', type=float,
                     default=models.DEFAULT_COST_MISSED_FAILURE,
                     help='cost of a missed failure (default: %(default)s);'
                          ' the ratio sets the decision threshold')
    mdl.add_argument('--exclude-migrations', metavar='FILE',
                     help='CSV host,start,end (or JSON) of past migrations; '
                          'samples they touched are not trained on')
    t.add_argument('--report', metavar='DIR',
                   help='also run the full evaluation (every model and '
                        'baseline) and write report.json and PNG plots here')
    t.add_argument('--out', required=True, metavar='PATH',
                   help='where to write the model bundle')


def run(args, stdout, stderr):
    if args.trace:
        return _run_on_trace(args, stdout, stderr)
    if args.prometheus and args.aetos is not None:
        raise common.UsageError('train: --prometheus excludes --aetos')
    # through Aetos, as from Prometheus
    args.prometheus_like = bool(args.prometheus) or args.aetos is not None
    if args.prometheus_like and (args.influxdb or args.database):
        which = '--aetos' if args.aetos is not None else '--prometheus'
        raise common.UsageError(f'train: {which} excludes --influxdb and '
                                f'--database')
    if not args.prometheus_like and (not args.influxdb or
                                     not args.database):
        raise common.UsageError('train: --influxdb and --database are '
                                'required (or pass --prometheus URL, '
                                '--aetos [URL] or --trace NAME)')
    check_out(args.out)
    g = args.granularity
    if args.horizon is None:
        args.horizon = auto_horizon(g, args.reference_memory, stderr)
    for name in ('period', 'horizon', 'window'):
        if getattr(args, name) % g:
            raise common.CommandError(
                f'--{name} {getattr(args, name)} s is not a multiple of '
                f'--granularity {g} s')
    until = time.time() if args.until is None else args.until
    end = int(until // g) * g        # whole steps only: drop the one filling
    start = end - (args.since // g) * g
    ds = _datasource(args)
    if args.prometheus_like:
        # hosts are those that reported within the history read
        ds.clock = lambda: end
        ds.list_period = max(end - start, g)
    ds.read_deadline = args.chunk_deadline
    ds.read_deadline_what = CHUNK_WHAT   # e.g. the host listing's
    overall = deadline_mod.Deadline(args.deadline, OVERALL_WHAT)
    try:
        with ds.reads_within(overall):
            names = host_names(ds, args.hosts, stderr)
        stderr.write(f'{len(names)} host(s), {_iso(start)} .. {_iso(end)} '
                     f'at {g} s\n')
        windows = read_history(ds, names, start, end, g, args.chunk,
                               stderr, filter_names=bool(args.hosts),
                               chunk_deadline=args.chunk_deadline,
                               deadline=overall)
    except deadline_mod.DeadlineExceeded as exc:
        raise common.CommandError(
            f'{exc}; raise --chunk-deadline or --deadline, or read less at '
            f'once (--chunk, --since, --hosts)') from exc
    finally:
        ds.close()
    windows_source = ('aetos' if args.aetos is not None else
                      'prometheus' if args.prometheus else 'influxdb')
    empty = [n for i, n in enumerate(names)
             if np.isnan(windows.data['cpu'][i]).all()]
    if len(empty) == len(names):
        raise common.CommandError(
            f'no CPU data for any of {len(names)} host(s) between '
            f'{_iso(start)} and {_iso(end)}; check --since/--until, --hosts '
            f'and ' + ('--scrape-interval' if args.prometheus_like
                       else '--cpu-form'))
    if empty:
        stderr.write(f'no CPU data for {len(empty)} host(s): '
                     f'{", ".join(empty[:10])}\n')

    def progress(stage, done, total):
        if done == 0:
            stderr.write(f'{stage}...\n')

    bundle, ev = _train(args, windows, progress)
    bundle.metadata['training_source'] = windows_source
    return _finish_train(args, windows, bundle, ev, stdout, stderr)


#: How messages name --deadline and --chunk-deadline.
OVERALL_WHAT = 'the overall read deadline (--deadline)'
CHUNK_WHAT = 'the per-chunk read deadline (--chunk-deadline)'


def _datasource(args):
    """The datasource the history is read from (InfluxDB, Prometheus or
    Aetos).
    """
    prom_args = dict(host_label=args.host_label, schema=args.schema,
                     scrape_interval=args.scrape_interval,
                     timeout=args.timeout, retries=1)
    if args.aetos is not None:
        sess = common.keystone_session(args)
        try:
            return aetos.AetosDataSource(
                sess, endpoint=args.aetos or None,
                interface=args.os_interface, region_name=args.os_region_name,
                **prom_args)
        except ValueError as exc:
            raise common.UsageError(f'train: {exc}') from None
        except metric_windows.MetricsUnavailable as exc:
            raise common.CommandError(str(exc)) from None
    if args.prometheus:
        try:
            return prometheus.PrometheusDataSource(url=args.prometheus,
                                                   **prom_args)
        except ValueError as exc:
            raise common.UsageError(f'train: {exc}') from None
    return influxdb.InfluxDBDataSource(
        url=args.influxdb, database=args.database, username=args.username,
        password=common.read_password(args.password_file),
        timeout=args.timeout, cpu_form=args.cpu_form, retries=1)


def check_out(path):
    """Refuse an ``--out`` the bundle could not be written to, before any
    read or training: a directory or other non-file, a folder that does not
    exist or cannot be written, a kernel file system (/proc, /sys).
    """
    out = os.path.abspath(path)
    real = os.path.realpath(out)
    for virtual in ('/proc', '/sys'):
        if real == virtual or real.startswith(virtual + '/'):
            raise common.CommandError(
                f'--out {path}: {real} is under {virtual}, a kernel file '
                'system that cannot hold a model bundle')
    if os.path.isdir(real):
        raise common.CommandError(
            f'--out {path} is a directory; give the bundle\'s file path, '
            f'e.g. {os.path.join(path, "model.joblib")}')
    if os.path.lexists(out) and not os.path.isfile(real):
        raise common.CommandError(f'--out {path} exists and is not a '
                                  'regular file')
    out_dir = os.path.dirname(real)
    if not os.path.isdir(out_dir):
        raise common.CommandError(f'--out {path}: directory {out_dir} '
                                  'does not exist')
    try:
        # what the save will do: create a file there (access() says yes
        # to root even on a read-only file system)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as exc:
        raise common.CommandError(f'--out {path}: directory {out_dir} is '
                                  f'not writable ({exc.strerror or exc})'
                                  ) from None


def _run_on_trace(args, stdout, stderr):
    check_out(args.out)
    windows = common.trace_windows(args, stderr)
    d = traces.TRACE_DEFAULTS[args.trace]
    step = windows.step
    if args.horizon is None:
        args.horizon = auto_horizon(1, args.reference_memory, stderr)
    # trace steps are coarse: round the durations up to whole steps
    dur = {n: max(step, -(-getattr(args, n) // step) * step)
           for n in ('period', 'horizon', 'window')}
    if dur['window'] < 4 * step:
        dur['window'] = 6 * step
    args.period, args.horizon, args.window = (dur['period'], dur['horizon'],
                                              dur['window'])
    if args.cycle is None:
        args.cycle = d['cycle']
    # stage lines only for InfluxDB history: a trace run never printed them
    bundle, ev = _train(args, windows, progress=None)
    bundle.metadata['training_source'] = f'trace:{args.trace}'
    return _finish_train(args, windows, bundle, ev, stdout, stderr)


def _train(args, windows, progress):
    """The model bundle and its held-out evaluation, from the options
    both history sources share.
    """
    return training.train(
        windows, threshold=args.threshold, period=args.period,
        horizon=args.horizon, window=args.window,
        model_kind=args.model_kind, test_fraction=args.test_fraction,
        progress=progress, random_state=args.seed,
        max_samples=args.max_samples, stride=args.stride,
        exclude_intervals=common.excluded_intervals(args.exclude_migrations),
        cycle=args.cycle, cost_fp=args.cost_false_migration,
        cost_fn=args.cost_missed_failure)


def cycles_summary(params, history_s):
    """(line for stdout, warning or None) on a cyclic bundle's cycles."""
    if params.get('cycle'):
        return (f'load cycle: {params["cycle"]:g} s, declared for every '
                'host'), None
    cycles = params.get('host_cycles') or {}
    found = sorted(c for c in cycles.values() if c > 0)
    line = (f'load cycles found for {len(found)} of {len(cycles)} hosts'
            + (f' ({found[0]:g} to {found[-1]:g} s)' if found else ''))
    missing = sorted(h for h, c in cycles.items() if not c > 0)
    if not missing:
        return line, None
    shown = ', '.join(missing[:10]) + (' ...' if len(missing) > 10 else '')
    return line, (
        f'WARNING: no load cycle found for {len(missing)} host(s) ({shown}) '
        f'in {history_s:g} s of history; a cycle is found only up to half '
        f'the history and when it repeats clearly: declare one with '
        f'--cycle (e.g. 86400) or train on a longer --since; those hosts '
        f'are scored without their last cycle')


def _finish_train(args, windows, bundle, ev, stdout, stderr):
    out = os.path.abspath(args.out)
    stdout.write(common.format_evaluation(ev) + '\n')
    if bundle.metadata.get('feature_set') == 'cyclic':
        line, warning = cycles_summary(
            bundle.metadata['feature_params'],
            float(len(windows.times) * windows.step))
        stdout.write(line + '\n')
        if warning:
            stderr.write(warning + '\n')
    if ev.get('beats_baseline') is False:
        stderr.write('WARNING: the model does not beat the persistence '
                     'baseline on held-out data (ROC-AUC); consider a '
                     'longer history before deploying it\n')
    digest = bundle_mod.save_bundle(bundle, out)
    stdout.write(f'\nwrote {out}\nsha256 {digest}\n\n'
                 f'# add to watcher.conf:\n[failpredict]\n'
                 f'model_path = {out}\nmodel_sha256 = {digest}\n')
    if args.report:
        kinds = [args.model_kind] if args.model_kind in models.RISK_KINDS \
            else []
        for extra in ('gbt_peak', 'gbt', 'svm_nystroem'):
            if extra not in kinds:
                kinds.append(extra)
        result = evaluation.evaluate(
            windows, threshold=args.threshold, period=args.period,
            horizon=args.horizon, window=args.window, model_kinds=kinds,
            test_fraction=args.test_fraction, cycle=args.cycle,
            cost_fp=args.cost_false_migration,
            cost_fn=args.cost_missed_failure,
            exclude_intervals=common.excluded_intervals(
                args.exclude_migrations),
            random_state=args.seed, max_samples=args.max_samples,
            name=args.trace or ('prometheus' if args.prometheus_like
                                else 'influxdb'))
        stdout.write('\n')
        common.write_report(result, args.report, stdout)
    return 0


def auto_horizon(granularity, memory_mib, stderr=None):
    """The default horizon: a ``memory_mib`` VNF's estimated live migration
    at full CPU (the slowest case) plus the margin, rounded up to whole
    ``granularity`` steps. Uses the ``[failpredict] migration_*`` options.
    """
    c = conf.CONF.failpredict
    est = migration_time.precopy(
        memory_mib, migration_time.dirty_rate(
            memory_mib, 100.0, c.migration_dirty_fraction),
        c.migration_bandwidth_mbps, c.migration_max_downtime,
        c.migration_setup_time)
    need = migration_time.required_horizon([est], c.migration_margin)
    if need is None:
        raise common.CommandError(
            f'no automatic horizon: a {memory_mib} MiB VNF at full CPU '
            f'cannot be live-migrated ({est.reason}); pass --horizon')
    horizon = int(math.ceil(need / granularity)) * granularity
    if stderr is not None:
        stderr.write(f'horizon: {horizon} s (live migration of a '
                     f'{memory_mib} MiB VNF at full CPU ~{est.seconds:.0f} s'
                     f' + margin {c.migration_margin:g} s)\n')
    return horizon


def host_names(datasource, hosts_arg, stderr):
    """The ``--hosts`` names, or every host reporting CPU but the
    UUID-named series (VNF instances).
    """
    if hosts_arg:
        names = [h.strip() for h in hosts_arg.split(',') if h.strip()]
        if not names:
            raise common.CommandError('--hosts is empty')
        return names
    names = datasource.list_names(metric_windows.COMPUTE_NODE)
    hosts = [n for n in names if not _UUID.match(n)]
    skipped = len(names) - len(hosts)
    if skipped:
        stderr.write(f'ignoring {skipped} UUID-named series (VNF '
                     f'instances); pass --hosts to choose explicitly\n')
    if not hosts:
        database = getattr(datasource, 'database', None)
        if database is None:   # Prometheus
            metric = query.LIST_METRIC[datasource.schema][
                metric_windows.COMPUTE_NODE]
            raise common.CommandError(
                f'no host reports {metric} with a '
                f'{datasource.host_label!r} label in the history at '
                f'{datasource.url}; check --host-label and the node job')
        raise common.CommandError(
            f'no host reports CPU in database {database!r} at '
            f'{datasource.url}; check --database and the collectd input')
    return hosts


def read_history(datasource, names, start, end, granularity, chunk, stderr,
                 filter_names=True, chunk_deadline=None, deadline=None):
    """The datasource's chunked history read, with a progress bar.

    :param chunk_deadline: seconds each chunk's read may take
    :param deadline: a :class:`~.deadline.Deadline` the whole read must
        end by
    """
    bounds = metric_windows.chunk_bounds(start, end, granularity, chunk)
    backend = ('Prometheus' if isinstance(
        datasource, prometheus.PrometheusDataSource) else 'InfluxDB')
    bar = common.ProgressBar(f'reading {backend}', len(bounds), stderr)

    def progress(done, total):
        bar.update(done, _iso(bounds[done - 1][1]) if done else '')

    return datasource.read_history(names, start, end, granularity, chunk,
                                   progress=progress,
                                   filter_names=filter_names,
                                   chunk_deadline=chunk_deadline,
                                   deadline=deadline, chunk_what=CHUNK_WHAT)


def _iso(ts):
    return datetime.datetime.fromtimestamp(
        ts, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
