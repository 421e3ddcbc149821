"""The ``watcher-failpredict`` console script.

``watcher-failpredict train`` reads the compute hosts' collectd history from
InfluxDB, trains a model bundle, prints its held-out evaluation and the
``[failpredict]`` lines to paste into ``watcher.conf``.
``watcher-failpredict show-model PATH`` prints what a bundle holds.

Passwords never go on the command line (where ``ps`` and shell histories
would show them): use ``--password-file`` or the environment variable
``FAILPREDICT_INFLUXDB_PASSWORD``. Errors print one line on stderr and exit
with status 2.
"""

import argparse
import datetime
import logging
import math
import os
import re
import sys
import time

import numpy as np

from watcher_failpredict.datasources import base
from watcher_failpredict.prediction import bundle as bundle_mod
from watcher_failpredict.prediction import contamination
from watcher_failpredict.prediction import models
from watcher_failpredict.prediction import training
from watcher_failpredict.testbed import scenario as tb_scenario

PROG = 'watcher-failpredict'
PASSWORD_ENV = 'FAILPREDICT_INFLUXDB_PASSWORD'
USERNAME_ENV = 'FAILPREDICT_INFLUXDB_USERNAME'

_UUID = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-'
                   r'[0-9a-f]{12}$', re.IGNORECASE)
_UNITS = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}


class CommandError(Exception):
    """An error to report as one line, exit status 2."""


def parse_duration(text):
    """Seconds in ``'90'``, ``'90s'``, ``'15m'``, ``'24h'``, ``'7d'``."""
    m = re.fullmatch(r'\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*', str(text))
    if not m:
        raise argparse.ArgumentTypeError(
            f'{text!r} is not a duration (e.g. 3600, 90m, 24h, 7d)')
    seconds = float(m.group(1)) * _UNITS[m.group(2) or 's']
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f'{text!r} must be positive')
    return int(seconds)


def parse_time(text):
    """Unix seconds from epoch seconds or an ISO 8601 date-time (UTC)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'{text!r} is neither Unix seconds nor an ISO 8601 time') from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp()


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not an integer') \
            from None
    if value < 1:
        raise argparse.ArgumentTypeError(f'{text!r} must be >= 1')
    return value


def build_parser():
    # allow_abbrev=False: otherwise "--password X" would be taken as
    # --password-file and a secret typed on the command line accepted.
    parser = argparse.ArgumentParser(
        prog=PROG, allow_abbrev=False,
        description='Train and inspect watcher-failpredict '
                    'failure-prediction models.')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    sub.required = True

    t = sub.add_parser(
        'train', allow_abbrev=False,
        help='train a model bundle from InfluxDB history',
        description='Read the compute hosts\' collectd history from '
                    'InfluxDB, train a model on its earlier part, evaluate '
                    'it on the later part (time-ordered, never shuffled) '
                    'and write the bundle atomically.')
    src = t.add_argument_group('InfluxDB')
    src.add_argument('--influxdb', metavar='URL',
                     help='InfluxDB 1.x base URL, e.g. http://127.0.0.1:8086 '
                          '(required unless --trace)')
    src.add_argument('--database', metavar='DB',
                     help='database the collectd input writes into '
                          '(required unless --trace)')
    src.add_argument('--username', default=os.environ.get(USERNAME_ENV),
                     help=f'InfluxDB user (default: ${USERNAME_ENV})')
    src.add_argument('--password-file', metavar='FILE',
                     help='file whose first line is the password (default: '
                          f'${PASSWORD_ENV})')
    src.add_argument('--cpu-form', choices=('percent', 'jiffies'),
                     default='percent',
                     help='how collectd reports CPU (default: percent)')
    src.add_argument('--timeout', type=float, default=60.0,
                     help='seconds per InfluxDB request (default: 60)')
    src.add_argument('--chunk', type=parse_duration, default=3600,
                     help='history read per request (default: 1h)')
    src.add_argument('--hosts', metavar='H1,H2',
                     help='collectd host names to train on (default: every '
                          'host reporting CPU, UUID-named series, i.e. VNF '
                          'instances, excluded)')
    span = t.add_argument_group('history')
    span.add_argument('--since', type=parse_duration, default=86400,
                      help='history length ending at --until (default: '
                           '24h)')
    span.add_argument('--until', type=parse_time, default=None,
                      help='end of the history, Unix seconds or ISO 8601 '
                           '(default: now)')
    span.add_argument('--granularity', type=_positive_int, default=10,
                      help='seconds per step; must match the strategy\'s '
                           'granularity (default: 10)')
    mdl = t.add_argument_group('model')
    mdl.add_argument('--threshold', type=float, default=90.0,
                     help='failure state: mean CPU %% over --period at or '
                          'above this (default: 90)')
    mdl.add_argument('--period', type=parse_duration, default=300,
                     help='trigger period (default: 300 s)')
    mdl.add_argument('--horizon', type=parse_duration, default=None,
                     help='predict failures this far ahead (default: auto, '
                          'the estimated live migration of a '
                          '--reference-memory VNF at full CPU plus '
                          '[failpredict] migration_margin, in whole steps: '
                          'what matters is the destination\'s state when '
                          'the migration completes)')
    mdl.add_argument('--reference-memory', type=_positive_int, default=1024,
                     metavar='MIB',
                     help='memory of the VNF the automatic horizon is sized '
                          'for (default: 1024 MiB, the paper\'s VNFs)')
    mdl.add_argument('--window', type=parse_duration, default=600,
                     help='feature window (default: 600 s)')
    mdl.add_argument('--model-kind', choices=models.MODEL_KINDS,
                     default='gbt_peak',
                     help='gbt_peak (default): probability that the future '
                          'peak CPU, forecast by gradient-boosted trees, '
                          'crosses the threshold; gbt: calibrated '
                          'gradient-boosted classifier; svm: the paper\'s '
                          'RBF SVM (subsampled); svm_nystroem: the SVM made '
                          'to scale; all score any host. fixed_hosts: the '
                          'paper\'s which-server classifier, for evaluation '
                          'only (doc: models)')
    mdl.add_argument('--test-fraction', type=float, default=0.25,
                     help='latest share of the history held out for '
                          'evaluation (default: 0.25)')
    mdl.add_argument('--max-samples', type=_positive_int,
                     default=models.DEFAULT_MAX_SAMPLES,
                     help='training subsample cap of the svm kind; SVC fit '
                          'time grows quadratically or worse (default: '
                          '%(default)s)')
    mdl.add_argument('--stride', type=_positive_int, default=1,
                     help='use every n-th time step as a sample (default: 1)')
    mdl.add_argument('--seed', type=int, default=0, help='random seed')
    _add_trace_options(t)
    mdl.add_argument('--cycle', type=parse_duration, default=None,
                     help='load cycle for the gbt cycle-position features '
                          '(default: none; traces: their own)')
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
    t.set_defaults(func=cmd_train)

    r = sub.add_parser(
        'report', allow_abbrev=False,
        help='evaluate an existing bundle against the baselines',
        description='Score a model bundle and every baseline on the later '
                    'stretch of a trace (time-ordered); print the table, '
                    'write JSON and PNG plots.')
    r.add_argument('--bundle', required=True, metavar='PATH')
    r.add_argument('--sha256', default=None,
                   help='refuse the bundle unless its sha256 is this')
    _add_trace_options(r)
    r.add_argument('--threshold', type=float, default=None,
                   help='failure threshold %% (default: the bundle\'s)')
    r.add_argument('--test-fraction', type=float, default=0.25)
    r.add_argument('--models', default='', metavar='K1,K2',
                   help='also train these kinds for comparison')
    r.add_argument('--exclude-migrations', metavar='FILE')
    r.add_argument('--out-dir', metavar='DIR',
                   help='write report.json and PNG plots here')
    r.set_defaults(func=cmd_report)

    s = sub.add_parser('show-model', allow_abbrev=False,
                       help='print a model bundle\'s metadata')
    s.add_argument('path', metavar='PATH')
    s.add_argument('--sha256', default=None,
                   help='refuse the file unless its sha256 is this')
    s.set_defaults(func=cmd_show_model)

    e = sub.add_parser(
        'evaluate', allow_abbrev=False,
        help='run the NFV testbed: every policy on a scenario',
        description='Simulate the NFV testbed (doc/source/testbed.rst): '
                    'train the model on the scenario\'s training stretch, '
                    'run each policy (the real predicted_least_failure '
                    'strategy with different ranking models, no-mig, '
                    'oracle) on the test stretch, print the QoS table.')
    e.add_argument('--scenario', default='paper', metavar='NAME|FILE',
                   help='built-in scenario (%s) or a YAML file (default: '
                        'paper)' % ', '.join(tb_scenario.builtin_names()))
    e.add_argument('--policies', default=None, metavar='P1,P2',
                   help='comma-separated policies (default: all of no-mig, '
                        'random, least-cpu, least-cpu-wb, mean-kstd, trend, '
                        'seasonal, proposed, proposed-proactive, oracle)')
    e.add_argument('--influxdb', metavar='URL',
                   help='write the testbed\'s metrics into this InfluxDB '
                        '1.x (collectd schema, one database per policy and '
                        'seed) and let the strategies read them through '
                        'InfluxDBDataSource (default: in memory)')
    e.add_argument('--database-prefix', default='failpredict_testbed',
                   metavar='NAME',
                   help='with --influxdb: databases are named '
                        'NAME_<scenario>_<policy>_<seed>; each is dropped '
                        'and created anew (default: failpredict_testbed)')
    e.add_argument('--seeds', type=_positive_int, default=1,
                   help='repeat with this many seeds and report means with '
                        '95 %% confidence intervals (default: 1)')
    e.add_argument('--stretch', choices=('test', 'validation'),
                   default='test',
                   help='test: train on the training stretch, run the '
                        'policies on the test stretch. validation (the '
                        'development protocol): train on the first 2/3 of '
                        'the training stretch and run the policies on the '
                        'rest; the test stretch is never simulated '
                        '(default: test)')
    e.add_argument('--json', metavar='FILE', help='write the results here')
    e.add_argument('--plots', metavar='DIR', help='write PNG plots here')
    e.set_defaults(func=cmd_evaluate)
    return parser


def _add_trace_options(p):
    from watcher_failpredict.prediction import traces
    g = p.add_argument_group('trace (instead of InfluxDB)')
    g.add_argument('--trace', choices=traces.TRACE_NAMES,
                   help='train/evaluate on a trace set or the synthetic '
                        'periodic workload')
    g.add_argument('--trace-opt', action='append', default=[],
                   metavar='KEY=VALUE',
                   help='loader option, repeatable (e.g. signal=avg, '
                        'overcommit=1.5, resolution=raw, n_hosts=6, '
                        'days=0.5)')
    g.add_argument('--traces', metavar='DIR',
                   help=f'traces directory (default: ${traces.TRACES_ENV} '
                        'or ../shared/traces beside the repository)')


# -- helpers ---------------------------------------------------------------

def read_password(path):
    """The password from ``path`` (first line) or the environment."""
    if path:
        try:
            with open(path, encoding='utf-8') as f:
                return f.readline().rstrip('\r\n')
        except OSError as exc:
            raise CommandError(f'cannot read password file {path}: '
                               f'{exc.strerror or exc}') from None
    return os.environ.get(PASSWORD_ENV)


class ProgressBar:
    """A progress bar on a stream (stderr).

    On a terminal it redraws one line; elsewhere (logs, pipes) it writes
    one line per update so the log stays readable.
    """

    def __init__(self, label, total, stream=None, width=30):
        self.label, self.total, self.width = label, max(int(total), 1), width
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        isatty = getattr(self.stream, 'isatty', None)
        self.tty = bool(isatty and isatty())

    def update(self, done, note=''):
        frac = min(max(done / self.total, 0.0), 1.0)
        fill = int(round(frac * self.width))
        bar = '#' * fill + '.' * (self.width - fill)
        elapsed = time.monotonic() - self.start
        text = (f'{self.label} [{bar}] {done}/{self.total} {elapsed:5.1f}s '
                f'{note}').rstrip()
        if self.tty:
            end = '\n' if done >= self.total else ''
            self.stream.write('\r\033[K' + text + end)
        else:
            self.stream.write(text + '\n')
        self.stream.flush()


def host_names(datasource, hosts_arg, stderr):
    if hosts_arg:
        names = [h.strip() for h in hosts_arg.split(',') if h.strip()]
        if not names:
            raise CommandError('--hosts is empty')
        return names
    names = datasource.list_names(base.COMPUTE_NODE)
    hosts = [n for n in names if not _UUID.match(n)]
    skipped = len(names) - len(hosts)
    if skipped:
        stderr.write(f'ignoring {skipped} UUID-named series (VNF '
                     f'instances); pass --hosts to choose explicitly\n')
    if not hosts:
        raise CommandError(
            f'no host reports CPU in database {datasource.database!r} at '
            f'{datasource.url}; check --database and the collectd input')
    return hosts


def read_history(datasource, names, start, end, granularity, chunk, stderr,
                 filter_names=True):
    """All host metrics of ``names`` over [start, end), chunk by chunk.

    One request per chunk keeps each answer small; the chunks are put on one
    grid by the same align() the strategy's reads use. With
    ``filter_names`` False every host is read and only ``names`` kept
    (cheaper than a filter listing every host).
    """
    metrics = tuple(base.HOST_METRICS)
    chunk = max(int(chunk) // granularity, 1) * granularity
    bounds = list(range(int(start), int(end), chunk))
    bar = ProgressBar('reading InfluxDB', len(bounds), stderr)
    bar.update(0)
    raw = {m: {} for m in metrics}
    for i, lo in enumerate(bounds):
        hi = min(lo + chunk, int(end))
        part = datasource._fetch(base.COMPUTE_NODE, metrics,
                                 tuple(names) if filter_names else None,
                                 lo, hi, granularity)
        for metric, per_name in part.items():
            for name, (t, v) in per_name.items():
                raw[metric].setdefault(name, []).append((t, v))
        bar.update(i + 1, f'{_iso(hi)}')
    joined = {
        m: {n: (np.concatenate([p[0] for p in parts]),
                np.concatenate([p[1] for p in parts]))
            for n, parts in per_name.items()}
        for m, per_name in raw.items()}
    return base.align(joined, tuple(names), metrics, start, end, granularity)


def _iso(ts):
    return datetime.datetime.fromtimestamp(
        ts, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def _fmt(value, pct=False):
    if value is None:
        return 'n/a'
    if isinstance(value, float):
        return f'{value:.3f}' if not pct else f'{value:.1f}'
    return str(value)


def format_table(rows, header):
    widths = [max(len(str(r[i])) for r in [header] + rows)
              for i in range(len(header))]
    lines = ['  '.join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths)))
             for r in [header] + rows]
    lines.insert(1, '  '.join('-' * w for w in widths))
    return '\n'.join(lines)


def format_evaluation(ev):
    """The held-out evaluation as a text table."""
    if 'baseline_persistence' in ev:
        m, b = ev['model'], ev['baseline_persistence']
        rows = [(label, _fmt(m[k]), _fmt(b[k])) for label, k in (
            ('ROC-AUC', 'roc_auc'), ('PR-AUC', 'pr_auc'),
            ('precision@0.5', 'precision'), ('recall@0.5', 'recall'),
            ('F1@0.5', 'f1'))]
        table = format_table(rows, ('held-out', 'model',
                                    'persistence (mean CPU now)'))
        rates = (f'positive rate: train {ev["positive_rate_train"]:.3f}, '
                 f'test {ev["positive_rate_test"]:.3f}')
    else:
        names = ('model', 'baseline_least_cpu', 'oracle')
        rows = [(label, *(_fmt(ev[n][k]) for n in names)) for label, k in (
            ('accuracy', 'accuracy'),
            ('mean future peak CPU %', 'mean_future_peak_cpu'),
            ('destination failure rate', 'destination_failure_rate'))]
        table = format_table(rows, ('held-out', 'model', 'least-cpu',
                                    'oracle'))
        rates = ''
    head = (f'train {ev["train_span"][0]} .. {ev["train_span"][1]} '
            f'({ev["n_train"]} samples); test {ev["test_span"][0]} .. '
            f'{ev["test_span"][1]} ({ev["n_test"]} samples)')
    return '\n'.join(x for x in (head, table, rates) if x)


# -- commands ----------------------------------------------------------------

def _trace_windows(args, stderr):
    from watcher_failpredict.prediction import traces
    opts = {}
    for item in args.trace_opt:
        key, sep, value = item.partition('=')
        if not sep or not key:
            raise CommandError(f'--trace-opt {item!r}: expected KEY=VALUE')
        for conv in (int, float):
            try:
                value = conv(value)
                break
            except ValueError:
                pass
        opts[key.strip()] = value
    try:
        windows = traces.load_trace(args.trace, traces=args.traces, **opts)
    except TypeError as exc:
        raise CommandError(f'--trace-opt: {exc}') from None
    stderr.write(f'trace {args.trace}: {len(windows.names)} hosts x '
                 f'{len(windows.times)} steps of {windows.step} s\n')
    return windows


def _intervals(path):
    return contamination.load_intervals(path) if path else None


def _write_report(result, directory, stdout):
    from watcher_failpredict.prediction import evaluation
    stdout.write(evaluation.format_report(result) + '\n')
    if directory:
        os.makedirs(directory, exist_ok=True)
        path = evaluation.write_json(
            result, os.path.join(directory, 'report.json'))
        stdout.write(f'report: {path}\n')
        for png in evaluation.write_plots(result, directory):
            stdout.write(f'plot: {png}\n')


def cmd_train(args, stdout, stderr):
    from watcher_failpredict.datasources import influxdb
    if args.trace:
        return _cmd_train_trace(args, stdout, stderr)
    if not args.influxdb or not args.database:
        raise CommandError('--influxdb and --database are required (or '
                           'pass --trace NAME)')
    out = os.path.abspath(args.out)
    out_dir = os.path.dirname(out)
    if not os.path.isdir(out_dir):
        raise CommandError(f'--out {args.out}: directory {out_dir} does not '
                           f'exist')
    if not os.access(out_dir, os.W_OK):
        raise CommandError(f'--out {args.out}: directory {out_dir} is not '
                           f'writable')
    g = args.granularity
    if args.horizon is None:
        args.horizon = auto_horizon(g, args.reference_memory, stderr)
    for name in ('period', 'horizon', 'window'):
        if getattr(args, name) % g:
            raise CommandError(f'--{name} {getattr(args, name)} s is not a '
                               f'multiple of --granularity {g} s')
    until = time.time() if args.until is None else args.until
    end = int(until // g) * g        # whole steps only: drop the one filling
    start = end - (args.since // g) * g
    ds = influxdb.InfluxDBDataSource(
        url=args.influxdb, database=args.database, username=args.username,
        password=read_password(args.password_file), timeout=args.timeout,
        cpu_form=args.cpu_form, retries=1)
    names = host_names(ds, args.hosts, stderr)
    stderr.write(f'{len(names)} host(s), {_iso(start)} .. {_iso(end)} at '
                 f'{g} s\n')
    windows = read_history(ds, names, start, end, g, args.chunk, stderr,
                           filter_names=bool(args.hosts))
    empty = [n for i, n in enumerate(names)
             if np.isnan(windows.data['cpu'][i]).all()]
    if len(empty) == len(names):
        raise CommandError(f'no CPU data for any of {len(names)} host(s) '
                           f'between {_iso(start)} and {_iso(end)}; check '
                           f'--since/--until, --hosts and --cpu-form')
    if empty:
        stderr.write(f'no CPU data for {len(empty)} host(s): '
                     f'{", ".join(empty[:10])}\n')

    def progress(stage, done, total):
        if done == 0:
            stderr.write(f'{stage}...\n')

    bundle, ev = training.train(
        windows, threshold=args.threshold, period=args.period,
        horizon=args.horizon, window=args.window,
        model_kind=args.model_kind, test_fraction=args.test_fraction,
        progress=progress, random_state=args.seed,
        max_samples=args.max_samples, stride=args.stride,
        exclude_intervals=_intervals(args.exclude_migrations),
        cycle=args.cycle, cost_fp=args.cost_false_migration,
        cost_fn=args.cost_missed_failure)
    return _finish_train(args, windows, bundle, ev, stdout, stderr)


def auto_horizon(granularity, memory_mib, stderr=None):
    """The default horizon: a ``memory_mib`` VNF's estimated live migration
    at full CPU (the slowest case) plus the margin, rounded up to whole
    ``granularity`` steps. Uses the ``[failpredict] migration_*`` options.
    """
    from watcher_failpredict import conf
    from watcher_failpredict.prediction import migration_time
    c = conf.CONF.failpredict
    est = migration_time.precopy(
        memory_mib, migration_time.dirty_rate(
            memory_mib, 100.0, c.migration_dirty_fraction),
        c.migration_bandwidth_mbps, c.migration_max_downtime,
        c.migration_setup_time)
    need = migration_time.required_horizon([est], c.migration_margin)
    if need is None:
        raise CommandError(f'no automatic horizon: a {memory_mib} MiB VNF at '
                           f'full CPU cannot be live-migrated ({est.reason});'
                           f' pass --horizon')
    horizon = int(math.ceil(need / granularity)) * granularity
    if stderr is not None:
        stderr.write(f'horizon: {horizon} s (live migration of a '
                     f'{memory_mib} MiB VNF at full CPU ~{est.seconds:.0f} s'
                     f' + margin {c.migration_margin:g} s)\n')
    return horizon


def _cmd_train_trace(args, stdout, stderr):
    from watcher_failpredict.prediction import traces
    out = os.path.abspath(args.out)
    if not os.path.isdir(os.path.dirname(out)):
        raise CommandError(f'--out {args.out}: directory does not exist')
    windows = _trace_windows(args, stderr)
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
    bundle, ev = training.train(
        windows, threshold=args.threshold, period=args.period,
        horizon=args.horizon, window=args.window,
        model_kind=args.model_kind, test_fraction=args.test_fraction,
        random_state=args.seed, max_samples=args.max_samples,
        stride=args.stride,
        exclude_intervals=_intervals(args.exclude_migrations),
        cycle=args.cycle, cost_fp=args.cost_false_migration,
        cost_fn=args.cost_missed_failure)
    bundle.metadata['training_source'] = f'trace:{args.trace}'
    return _finish_train(args, windows, bundle, ev, stdout, stderr)


def _finish_train(args, windows, bundle, ev, stdout, stderr):
    out = os.path.abspath(args.out)
    stdout.write(format_evaluation(ev) + '\n')
    if ev.get('beats_baseline') is False:
        stderr.write('WARNING: the model does not beat the persistence '
                     'baseline on held-out data (ROC-AUC); consider a '
                     'longer history before deploying it\n')
    digest = bundle_mod.save_bundle(bundle, out)
    stdout.write(f'\nwrote {out}\nsha256 {digest}\n\n'
                 f'# add to watcher.conf:\n[failpredict]\n'
                 f'model_path = {out}\nmodel_sha256 = {digest}\n')
    if args.report:
        from watcher_failpredict.prediction import evaluation
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
            exclude_intervals=_intervals(args.exclude_migrations),
            random_state=args.seed, max_samples=args.max_samples,
            name=args.trace or 'influxdb')
        stdout.write('\n')
        _write_report(result, args.report, stdout)
    return 0


def cmd_report(args, stdout, stderr):
    from watcher_failpredict.prediction import evaluation
    if not args.trace:
        raise CommandError('report needs --trace NAME (the data to score '
                           'the bundle on)')
    bundle = bundle_mod.load_bundle(args.bundle, expected_sha256=args.sha256)
    md = bundle.metadata
    windows = _trace_windows(args, stderr)
    bundle.check_windows(windows)
    kinds = [k.strip() for k in args.models.split(',') if k.strip()]
    result = evaluation.evaluate(
        windows,
        threshold=md['threshold'] if args.threshold is None
        else args.threshold,
        period=md['period'], horizon=md['horizon'], window=md['window'],
        model_kinds=kinds, test_fraction=args.test_fraction,
        cycle=(md.get('feature_params') or {}).get('cycle'),
        cost_fp=md.get('costs', {}).get('false_migration', 1.0),
        cost_fn=md.get('costs', {}).get('missed_failure', 5.0),
        exclude_intervals=_intervals(args.exclude_migrations),
        bundle=bundle, name=f'{args.trace} ({os.path.basename(args.bundle)})')
    span = md.get('training_span') or [None, None]
    stderr.write(f'bundle trained on {span[0]} .. {span[1]}; make sure '
                 'that is before the test stretch, or the figures are '
                 'optimistic\n')
    _write_report(result, args.out_dir, stdout)
    return 0


def cmd_show_model(args, stdout, stderr):
    bundle = bundle_mod.load_bundle(args.path, expected_sha256=args.sha256)
    md = bundle.metadata
    stdout.write(f'{args.path}\nsha256 {bundle_mod.file_sha256(args.path)}'
                 '\n')
    for key in bundle_mod.REQUIRED_METADATA:
        if key in ('evaluation', 'feature_names'):
            continue
        value = md[key]
        if isinstance(value, (list, tuple)):
            value = ', '.join(str(v) for v in value)
        elif isinstance(value, dict):
            value = ', '.join(f'{k} {v}' for k, v in value.items())
        stdout.write(f'{key}: {value}\n')
    stdout.write(f'feature_names: {", ".join(md["feature_names"])}\n')
    if md.get('evaluation'):
        stdout.write(format_evaluation(md['evaluation']) + '\n')
    return 0


def cmd_evaluate(args, stdout, stderr):
    from watcher_failpredict.testbed import policies
    from watcher_failpredict.testbed import report
    from watcher_failpredict.testbed import runner
    from watcher_failpredict.testbed import scenario
    scn = scenario.load(args.scenario)
    names = list(policies.POLICIES)
    if args.policies:
        names = [p.strip() for p in args.policies.split(',') if p.strip()]
        unknown = [p for p in names if p not in policies.POLICIES]
        if unknown or not names:
            raise CommandError(f'--policies: unknown {unknown or "(none)"}; '
                               f'known: {", ".join(policies.POLICIES)}')
    bar = ProgressBar(f'evaluate {scn["name"]}', 1, stderr)
    last = [-1]

    def progress(done, total, note):
        bar.total = max(int(total), 1)
        if done != last[0]:
            last[0] = done
            bar.update(done, note)

    influx = ({'url': args.influxdb, 'prefix': args.database_prefix}
              if args.influxdb else None)
    result = runner.evaluate(scn, names, args.seeds, progress, influx,
                             args.stretch)
    stdout.write(f'scenario {scn["name"]}: {scn["description"]}\n')
    if args.stretch == 'validation':
        stdout.write('VALIDATION stretch: model fitted on the first part of '
                     'the training stretch, policies run on its rest (the '
                     'test stretch was not simulated)\n')
    for ev in result['evaluations']:
        m, b = ev['model'], ev['baseline_persistence']
        stdout.write(f'model (training stretch, held-out part): ROC AUC '
                     f'{m["roc_auc"]:.3f} vs persistence '
                     f'{b["roc_auc"]:.3f}\n')
    stdout.write(report.table(result['aggregate'], args.seeds) + '\n')
    if args.json:
        report.write_json(args.json, scn, result['aggregate'],
                          result['per_seed'], result['evaluations'],
                          args.stretch)
        stdout.write(f'results written to {args.json}\n')
    if args.plots:
        for path in report.plot(result['runs'], args.plots, scn['name']):
            stdout.write(f'plot: {path}\n')
    return 0


def main(argv=None, stdout=None, stderr=None):
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.command == 'train' and not args.trace
            and not (args.influxdb and args.database)):
        parser.error('train: --influxdb and --database are required '
                     '(or pass --trace NAME)')
    logging.basicConfig(level=logging.ERROR,
                        format=f'{PROG}: %(levelname)s %(message)s')
    try:
        return args.func(args, stdout, stderr)
    except (CommandError, ValueError, bundle_mod.ModelError,
            base.MetricsUnavailable, OSError) as exc:
        stderr.write(f'{PROG}: error: {exc}\n')
        return 2
    except KeyboardInterrupt:
        stderr.write(f'{PROG}: interrupted\n')
        return 130


if __name__ == '__main__':
    sys.exit(main())
