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

"""``watcher-failpredict compare-models``: a bundle against other model
kinds and the baselines, on the held-out stretch of a trace.

It was called ``report`` until the name said what it runs; ``report``
still works as an alias and warns on stderr.
"""

import os

from watcher_failpredict.cmd import common
from watcher_failpredict.prediction import evaluation

NAME = 'compare-models'
DEPRECATED_ALIASES = ('report',)


def add_parser(subparsers):
    r = subparsers.add_parser(
        NAME, aliases=list(DEPRECATED_ALIASES), allow_abbrev=False,
        help='compare a model bundle with other model kinds and the '
             'baselines on held-out trace data (report: its deprecated '
             'old name)',
        description='Score a model bundle and every baseline on the later '
                    'stretch of a trace (time-ordered); print the table, '
                    'write JSON and PNG plots.')
    r.add_argument('--bundle', required=True, metavar='PATH')
    common.add_model_check_options(r)
    common.add_trace_options(r)
    r.add_argument('--threshold', type=float, default=None,
                   help='failure threshold %% (default: the bundle\'s)')
    r.add_argument('--test-fraction', type=float, default=0.25)
    r.add_argument('--models', default='', metavar='K1,K2',
                   help='also train these kinds for comparison')
    r.add_argument('--exclude-migrations', metavar='FILE')
    r.add_argument('--out-dir', metavar='DIR',
                   help='write report.json and PNG plots here')


def run(args, stdout, stderr):
    if args.command in DEPRECATED_ALIASES:
        stderr.write(f'{common.PROG}: warning: {args.command!r} is '
                     f'deprecated and will be removed; use {NAME!r} (same '
                     f'options)\n')
    if not args.trace:
        raise common.CommandError(f'{NAME} needs --trace NAME (the data to '
                                  f'score the bundle on)')
    bundle = common.load_checked_bundle(args.bundle, args, stderr)
    md = bundle.metadata
    windows = common.trace_windows(args, stderr)
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
        exclude_intervals=common.excluded_intervals(args.exclude_migrations),
        bundle=bundle, name=f'{args.trace} ({os.path.basename(args.bundle)})')
    span = md.get('training_span') or [None, None]
    stderr.write(f'bundle trained on {span[0]} .. {span[1]}; make sure '
                 'that is before the test stretch, or the figures are '
                 'optimistic\n')
    common.write_report(result, args.out_dir, stdout)
    return 0
