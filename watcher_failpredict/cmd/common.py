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

"""What the ``watcher-failpredict`` commands share.

Argument types (durations, times, positive integers), the errors a command
reports, the password file, the progress bar, text tables, and the trace
options, trace loading and report writing that ``train`` and
``compare-models`` both use. Nothing here knows which command runs it.
"""

import argparse
import datetime
import math
import os
import re
import sys
import textwrap
import time

from watcher_failpredict.prediction import bundle as bundle_mod
from watcher_failpredict.prediction import contamination
from watcher_failpredict.prediction import evaluation
from watcher_failpredict.prediction import traces

PROG = 'watcher-failpredict'
PASSWORD_ENV = 'FAILPREDICT_INFLUXDB_PASSWORD'
USERNAME_ENV = 'FAILPREDICT_INFLUXDB_USERNAME'

_UNITS = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter without line breaks inside hyphenated words,
    so a policy name such as ``proposed-proactive`` stays whole (and can be
    copied from ``--help``).
    """

    def _split_lines(self, text, width):
        text = ' '.join(text.split())
        return textwrap.wrap(text, width, break_on_hyphens=False)


class CommandError(Exception):
    """An error to report as one line, exit status 2."""


class UsageError(Exception):
    """Arguments that parse but do not go together: the dispatcher prints
    the usage and this message and exits with status 2, as argparse does
    for arguments that do not parse.
    """


def parse_duration(text):
    """Seconds in ``'90'``, ``'90s'``, ``'15m'``, ``'24h'``, ``'7d'``."""
    m = re.fullmatch(r'\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*', str(text))
    if not m:
        raise argparse.ArgumentTypeError(
            f'{text!r} is not a duration (e.g. 3600, 90m, 24h, 7d)')
    seconds = float(m.group(1)) * _UNITS[m.group(2) or 's']
    if not math.isfinite(seconds):
        raise argparse.ArgumentTypeError(f'{text!r} is not a finite '
                                         'duration')
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f'{text!r} must be positive')
    return int(seconds)


def duration_at_most(maximum, why):
    """An argparse type: a duration (see parse_duration) of at most
    ``maximum`` seconds; the refusal states the maximum and ``why``.
    """
    def parse(text):
        seconds = parse_duration(text)
        if seconds > maximum:
            raise argparse.ArgumentTypeError(
                f'{text!r} is {seconds} s, more than the allowed maximum '
                f'{format_duration(maximum)} ({maximum} s): {why}')
        return seconds
    return parse


def format_duration(seconds):
    """``seconds`` in the largest whole unit of parse_duration's."""
    for unit in ('w', 'd', 'h', 'm'):
        if seconds % _UNITS[unit] == 0:
            return f'{seconds // _UNITS[unit]}{unit}'
    return f'{seconds}s'


def parse_time(text):
    """Unix seconds from epoch seconds or an ISO 8601 date-time (UTC)."""
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(
                f'{text!r} is not a finite time (Unix seconds or ISO 8601)')
        return value
    try:
        dt = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'{text!r} is neither Unix seconds nor an ISO 8601 time') from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp()


def positive_int(text):
    """An integer >= 1 (an argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not an integer') \
            from None
    if value < 1:
        raise argparse.ArgumentTypeError(f'{text!r} must be >= 1')
    return value


def positive_float(text):
    """A finite number > 0 (an argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a number') \
            from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f'{text!r} must be a finite number '
                                         '> 0')
    return value


def url_without_credentials(instead):
    """An argparse type: an http(s) URL without ``user:password@``. A
    password on the command line shows in ``ps`` and in shell history; the
    error says ``instead`` and never repeats the value.
    """
    def parse(text):
        from watcher_failpredict import conf
        try:
            return conf.URLWithoutCredentials(schemes=['http', 'https'])(text)
        except ValueError as exc:
            if 'credentials' in str(exc):
                raise argparse.ArgumentTypeError(
                    'the URL embeds credentials (user:password@host), which '
                    f'show in ps: remove them and {instead}') from None
            raise argparse.ArgumentTypeError(
                f'{text!r} is not an http(s) URL: {exc}') from None
    return parse


#: argparse type of ``--influxdb``
influxdb_url = url_without_credentials(
    f'pass --username (or ${USERNAME_ENV}) and --password-file (or '
    f'${PASSWORD_ENV})')
#: argparse type of ``--prometheus``
prometheus_url = url_without_credentials(
    'reach a Prometheus that needs credentials through a local proxy')


def add_influxdb_credentials(group):
    """--username and --password-file: how a command logs in to InfluxDB
    (never a password in argv).
    """
    group.add_argument('--username', default=os.environ.get(USERNAME_ENV),
                       help=f'InfluxDB user (default: ${USERNAME_ENV})')
    group.add_argument('--password-file', metavar='FILE',
                       help='file whose first line is the password '
                            f'(default: ${PASSWORD_ENV})')


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


#: argparse type of ``--aetos``
aetos_url = url_without_credentials(
    'Aetos takes a Keystone token: pass --os-username and '
    '--os-password-file (or $OS_PASSWORD)')

#: The Keystone options of a command that reaches Aetos, as the
#: openstack client's: (option, environment variable, default, help).
KEYSTONE_OPTIONS = (
    ('--os-auth-url', 'OS_AUTH_URL', None,
     'Keystone identity URL, e.g. http://keystone:5000/v3'),
    ('--os-username', 'OS_USERNAME', None, 'Keystone user'),
    ('--os-project-name', 'OS_PROJECT_NAME', None, 'project to scope to'),
    ('--os-user-domain-name', 'OS_USER_DOMAIN_NAME', 'Default',
     'the user\'s domain'),
    ('--os-project-domain-name', 'OS_PROJECT_DOMAIN_NAME', 'Default',
     'the project\'s domain'),
    ('--os-region-name', 'OS_REGION_NAME', None,
     'region of the catalogue\'s metric-storage endpoint'),
    ('--os-interface', 'OS_INTERFACE', 'public',
     'interface of the catalogue\'s metric-storage endpoint'),
)
KEYSTONE_PASSWORD_ENV = 'OS_PASSWORD'


def add_keystone_options(group):
    """The openstack client's --os-* options (never a password in argv:
    ``--os-password-file`` or ``$OS_PASSWORD``).
    """
    for flag, env, default, text in KEYSTONE_OPTIONS:
        group.add_argument(flag, default=os.environ.get(env, default),
                           help=f'{text} (default: ${env}'
                                + (f', else {default})' if default else ')'))
    group.add_argument('--os-password-file', metavar='FILE',
                       help='file whose first line is the Keystone password '
                            f'(default: ${KEYSTONE_PASSWORD_ENV})')


def keystone_session(args):
    """A keystoneauth1 session of the --os-* options (password auth).

    The password is read from ``--os-password-file`` or ``$OS_PASSWORD``
    and only handed to keystoneauth, which sends it to Keystone alone.
    """
    missing = [flag for flag in ('--os-auth-url', '--os-username',
                                 '--os-project-name')
               if not getattr(args, flag[2:].replace('-', '_'))]
    if missing:
        raise UsageError(f'Aetos needs a Keystone login: pass '
                         f'{", ".join(missing)} (or their $OS_* variables)')
    if args.os_password_file:
        password = read_password(args.os_password_file)
    else:
        password = os.environ.get(KEYSTONE_PASSWORD_ENV)
    if not password:
        raise UsageError(f'Aetos needs a Keystone password: pass '
                         f'--os-password-file FILE (or '
                         f'${KEYSTONE_PASSWORD_ENV})')
    from keystoneauth1.identity import v3
    from keystoneauth1 import session
    auth = v3.Password(
        auth_url=args.os_auth_url, username=args.os_username,
        password=password, user_domain_name=args.os_user_domain_name,
        project_name=args.os_project_name,
        project_domain_name=args.os_project_domain_name)
    return session.Session(auth=auth)


def add_model_check_options(parser):
    """--sha256 and --allow-unverified: how a command may load a bundle."""
    parser.add_argument('--sha256', default=None, metavar='HEX',
                        help='refuse the bundle unless its sha256 is this '
                             '(required unless --allow-unverified)')
    parser.add_argument('--allow-unverified', action='store_true',
                        help='load the bundle without --sha256; a model '
                             'file is a pickle, i.e. code: only for files '
                             'you wrote yourself')


def load_checked_bundle(path, args, stderr):
    """The bundle at ``path`` under the --sha256 / --allow-unverified rule;
    an unverified load is announced on ``stderr`` (the command's logging
    shows errors only).
    """
    if not args.sha256 and args.allow_unverified:
        stderr.write(f'{PROG}: warning: loading {path} without a sha256 '
                     'check (--allow-unverified): it is a pickle, i.e. '
                     'code\n')
    return bundle_mod.load_bundle(path, expected_sha256=args.sha256,
                                  allow_unverified=args.allow_unverified)


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


def _fmt(value, pct=False):
    if value is None:
        return 'n/a'
    if isinstance(value, float):
        return f'{value:.3f}' if not pct else f'{value:.1f}'
    return str(value)


def format_table(rows, header):
    """``rows`` under ``header``: first column left-aligned, the others
    right-aligned, a dashed rule below the header.
    """
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


# -- traces and reports (train, compare-models) -------------------------------

def add_trace_options(p):
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
                   help=f'traces directory (default: ${traces.TRACES_ENV}, '
                        'else $XDG_CACHE_HOME/watcher-failpredict/traces; '
                        'watcher-failpredict traces fetch NAME fills it)')


def trace_windows(args, stderr):
    """The windows of ``--trace`` with its ``--trace-opt`` options."""
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


def excluded_intervals(path):
    """The ``--exclude-migrations`` intervals, None without the option."""
    return contamination.load_intervals(path) if path else None


def write_report(result, directory, stdout):
    """Print an evaluation report; with ``directory``, also write its JSON
    and plots there.
    """
    stdout.write(evaluation.format_report(result) + '\n')
    if directory:
        os.makedirs(directory, exist_ok=True)
        path = evaluation.write_json(
            result, os.path.join(directory, 'report.json'))
        stdout.write(f'report: {path}\n')
        for png in evaluation.write_plots(result, directory):
            stdout.write(f'plot: {png}\n')
