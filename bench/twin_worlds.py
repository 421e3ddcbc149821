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

"""What refusing a policy's first move costs where its forecast was right.

For each seed: run ``--policy`` on the scenario and take its first move
(when, off which server); build the twin (testbed/twin.py) whose history
is the same up to that decision and in which that server's background
over the strategy's look-ahead repeats its last cycle, the world the
forecast planned on; run ``no-mig``, the policy, ``planner-perfect`` (and
with ``--oracle`` the look-ahead oracle) on both worlds. The policy must
make the same first move on the twin (same history): the script checks
it. A policy that refuses the move keeps ``no-mig``'s figures in both
worlds, so the table says what the move is worth in each.

Usage::

    .venv/bin/python bench/twin_worlds.py --scenario alibaba --seeds 10

The test stretch is what it reads (the move it studies was seen there;
this measures a bound, it tunes nothing); ``--stretch validation`` is
the development protocol's.
"""

import argparse
import json
import logging
import statistics
import sys

from watcher_failpredict import atomic
from watcher_failpredict.strategies import planned_mode
from watcher_failpredict.testbed import cluster
from watcher_failpredict.testbed import policies as pol
from watcher_failpredict.testbed import report
from watcher_failpredict.testbed import runner
from watcher_failpredict.testbed import scenario
from watcher_failpredict.testbed import twin

BESIDE = ('no-mig', 'planner-perfect')


def _row(world, seed, name, tb):
    summary = report.summarize(tb)
    return {'world': world, 'seed': seed, 'policy': name,
            'mean_rt_all': summary['mean_rt_all'], 'p100': summary['p100'],
            'moves': [(round(m.start), int(m.vnf), int(m.src), int(m.dst))
                      for m in tb.migrations]}


def one_seed(scn, seed, policy, stretch, extra):
    """The seed's rows on both worlds; those of the scenario only when the
    policy makes no move.
    """
    names = [policy, *BESIDE, *extra]
    real = runner.run_seed(scn, seed, names, stretch=stretch)['runs']
    rows = [_row('real', seed, n, tb) for n, (tb, _) in real.items()]
    moved = real[policy][0].migrations
    if not moved:
        return rows, None
    first = moved[0]
    defaults = pol.strategy_defaults()
    k = int(round(first.start / real[policy][0].dt))
    # the stretch before's background (exogenous: no need to run it)
    before = cluster.Testbed(scn, seed, runner.TRAINED_ON[stretch])

    def world(tb):
        twin.repeat_cycle(tb, before, first.src, k,
                          planned_mode.look_ahead_seconds(defaults),
                          defaults['planner_history'],
                          scn['metrics_interval'], scn['trigger']['period'])

    other = runner.run_seed(scn, seed, names, stretch=stretch,
                            world=world)['runs']
    rows += [_row('twin', seed, n, tb) for n, (tb, _) in other.items()]
    again = other[policy][0].migrations
    same = bool(again) and (again[0].start, again[0].src, again[0].vnf) == (
        first.start, first.src, first.vnf)
    return rows, {'seed': seed, 'at': first.start, 'server': first.src,
                  'vnf': first.vnf, 'same_first_move_on_twin': same}


def table(rows, names):
    """Lines: per world and policy, mean headline ms, p100 and moves, and
    the paired difference to no-mig (seeds better).
    """
    out = []
    for world in ('real', 'twin'):
        base = {r['seed']: r['mean_rt_all'] for r in rows
                if r['world'] == world and r['policy'] == 'no-mig'}
        for name in names:
            got = [r for r in rows if r['world'] == world and
                   r['policy'] == name]
            if not got:
                continue
            diff = [r['mean_rt_all'] - base[r['seed']] for r in got]
            out.append(
                f'{world:5s} {name:16s} headline '
                f'{statistics.mean(r["mean_rt_all"] for r in got):7.3f} ms  '
                f'p100 {statistics.mean(r["p100"] for r in got):5.0f} ms  '
                f'moves {statistics.mean(len(r["moves"]) for r in got):4.1f}'
                f'  vs no-mig {statistics.mean(diff):+.3f} ms '
                f'(better on {sum(d < 0 for d in diff)}/{len(diff)} seeds)')
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--scenario', default='alibaba')
    ap.add_argument('--policy', default='proposed')
    ap.add_argument('--seeds', type=int, default=10)
    ap.add_argument('--stretch', default='test',
                    choices=('test', 'validation'))
    ap.add_argument('--oracle', action='store_true',
                    help='also run the look-ahead oracle (slow)')
    ap.add_argument('--json', help='write the rows to this file')
    args = ap.parse_args(argv)
    # the audits' reasons are not what this measures
    logging.getLogger('watcher_failpredict').setLevel(logging.ERROR)
    try:
        scn = scenario.load(args.scenario)
    except scenario.ScenarioError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    extra = ['oracle'] if args.oracle else []
    rows, moves = [], []
    first_seed = int(scn['seed'])
    for i, seed in enumerate(range(first_seed, first_seed + args.seeds)):
        print(f'seed {seed} ({i + 1}/{args.seeds})', file=sys.stderr,
              flush=True)
        got, move = one_seed(scn, seed, args.policy, args.stretch, extra)
        rows += got
        if move is None:
            print(f'  {args.policy} makes no move: no twin', file=sys.stderr)
        else:
            moves.append(move)
            print(f'  first move at {move["at"]:.0f} s off server '
                  f'{move["server"]}; the same on the twin: '
                  f'{move["same_first_move_on_twin"]}', file=sys.stderr)
    names = [args.policy, *BESIDE, *extra]
    print(f'{args.scenario}, {args.stretch} stretch, {args.seeds} seeds; '
          f'twins for the {len(moves)} seeds where {args.policy} moved')
    print('\n'.join(table([r for r in rows if r['world'] == 'twin' or
                           r['seed'] in {m['seed'] for m in moves}], names)))
    if args.json:
        atomic.write_text(args.json, json.dumps(
            {'rows': rows, 'first_moves': moves}, indent=1))
    return 0 if all(m['same_first_move_on_twin'] for m in moves) else 1


if __name__ == '__main__':
    sys.exit(main())
