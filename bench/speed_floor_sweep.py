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

"""Sweep the strategy's ``speed_floor`` on the testbed's validation stretch.

The development protocol (doc/source/testbed.rst): the model is trained on
the ``fit`` part of the training stretch and every policy runs on the
``validation`` part; the test stretch is never simulated. For each
scenario and seed it prints, per floor, the headline gain over ``no-mig``
(mean response time over all requests, timeouts at the timeout), p100 and
the moves of the trained model (reactive and proactive) and of
least-cpu's ranking, all through the real strategy.

Usage::

    .venv/bin/python bench/speed_floor_sweep.py --scenarios paper,alibaba \\
        --seeds 1,2 --floors 1,0.9,0.85,0.8 --json sweep.json
"""

import argparse
import json
import sys

import numpy as np

from watcher_failpredict import atomic
from watcher_failpredict.prediction import baseline_risk
from watcher_failpredict.testbed import cluster
from watcher_failpredict.testbed import policies as pol
from watcher_failpredict.testbed import report
from watcher_failpredict.testbed import runner
from watcher_failpredict.testbed import scenario


def _run(scn, seed, policy):
    """One validation-stretch run of ``policy``; its summary."""
    tb = cluster.Testbed(scn, seed, 'validation')
    every = int(round(scn['decision_interval'] / tb.dt))
    first = int(np.ceil(max(scn['model']['window'],
                            scn['trigger']['period']) / tb.dt))
    while tb.k < tb.n_steps:
        tb.run_until(tb.k + every)
        if first <= tb.k < tb.n_steps:
            for vnf, dst in policy.decide(tb):
                tb.start_migration(vnf, dst)
    return report.summarize(tb)


def _policies(scn, bundle, floor):
    md = pol.model_metadata(scn)
    # the reactive speed_floor rule (not the default queueing rule, nor
    # planned mode) is what is swept
    gate = dict(pol.REACTIVE, move_rule='speed_floor', speed_floor=floor)
    return {
        f'proposed@{floor}': pol.StrategyPolicy(
            'proposed', scn, bundle, gate),
        f'proactive@{floor}': pol.StrategyPolicy(
            'proposed', scn, bundle, dict(gate, mode='proactive')),
        f'least-cpu@{floor}': pol.StrategyPolicy(
            'least-cpu', scn, baseline_risk.CurrentCpuRisk(md), gate),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--scenarios', default='paper,alibaba')
    parser.add_argument('--seeds', default='1,2')
    parser.add_argument('--floors', default='1,0.95,0.9,0.85,0.8,0.7')
    parser.add_argument('--traces', default=None,
                        help='traces directory (as evaluate --traces)')
    parser.add_argument('--json', metavar='FILE')
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(',')]
    floors = [float(f) for f in args.floors.split(',')]
    results = {}
    for name in args.scenarios.split(','):
        scn = scenario.load(name, traces=args.traces)
        for seed in seeds:
            print(f'{name} seed {seed}: training on the fit part',
                  file=sys.stderr, flush=True)
            before = runner.simulate_history(scn, seed, 'fit')
            bundle, _ = runner.train_model(scn, seed, history=before)
            runs = {'no-mig': _run(scn, seed, pol.NoMigration())}
            for floor in floors:
                for label, policy in _policies(scn, bundle, floor).items():
                    print(f'{name} seed {seed}: {label}', file=sys.stderr,
                          flush=True)
                    runs[label] = _run(scn, seed, policy)
            base = runs['no-mig'][report.HEADLINE]
            for label, s in runs.items():
                gain = 100 * (base - s[report.HEADLINE]) / base
                print(f'{name} seed {seed} {label:18s} gain {gain:+6.1f} %  '
                      f'p100 {s["p100"]:7.0f}  moves {s["migrations"]}',
                      flush=True)
            keys = (report.HEADLINE, 'p100', 'migrations')
            results[f'{name}/{seed}'] = {
                label: {key: s[key] for key in keys}
                for label, s in runs.items()}
    if args.json:
        atomic.write_text(args.json, json.dumps(results, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
