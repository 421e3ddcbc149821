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

"""One-step regret of each policy on the same states (issue 11).

One driver policy runs the validation stretch (the development protocol);
at every decision with a host in failure state every policy is asked what
it would do in that state and scored by the look-ahead oracle's rollouts
on the true future (watcher_failpredict/testbed/regret.py). Prints, per
policy, the share of the best single move's gain it takes and where the
rest is lost: not moving, moving where no move pays, the VNF, the
destination, a second move, or moves the oracle's search does not hold
(off hosts that are not failing, proactive mode).

    .venv/bin/python bench/decision_regret.py --scenario paper \\
        --driver oracle-reactive --seeds 1,2,3
"""

import argparse
import json
import multiprocessing
import sys

from watcher_failpredict.testbed import policies
from watcher_failpredict.testbed import regret
from watcher_failpredict.testbed import scenario

DEFAULT_SHADOWS = ('proposed,proposed-proactive,least-cpu-gated,least-cpu,'
                   'seasonal,oracle-reactive')


def _one(args):
    scn_name, driver, shadows, seed = args
    scn = scenario.load(scn_name)
    return regret.run(scn, driver, shadows, seed)


def table(res, names):
    avail = res['available']
    lines = [f"triggered decisions {res['decisions']:.0f}, best single "
             f"move gains {avail:,.0f} request-s over the look-ahead "
             f"({100 * avail / res['base']:.1f} % of no move's cost)",
             f"{'policy':<20}{'captured':>10}{'not moved':>11}"
             f"{'needless':>10}{'choice':>9}{'dest':>8}{'2nd move':>10}"
             f"{'other':>8}"
             f"{'moves':>8}"]
    for n in names:
        r = res[n]
        share = [100 * r[k] / avail if avail else 0.0 for k in
                 ('captured',) + regret.PARTS]
        lines.append(f'{n:<20}' + ''.join(
            f'{v:>{w}.1f}%' for v, w in zip(share, (9, 10, 9, 8, 7, 9, 7)))
            + f"{r['moves']:>8.0f}")
    return '\n'.join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--scenario', default='paper')
    p.add_argument('--driver', default='oracle-reactive',
                   choices=policies.POLICIES)
    p.add_argument('--policies', default=DEFAULT_SHADOWS)
    p.add_argument('--seeds', default='1,2,3')
    p.add_argument('--jobs', type=int, default=2)
    p.add_argument('--json', metavar='FILE')
    a = p.parse_args(argv)
    shadows = [s for s in a.policies.split(',') if s]
    unknown = sorted(set(shadows) - set(policies.POLICIES))
    if unknown:
        p.error(f'unknown policies: {", ".join(unknown)}')
    seeds = [int(s) for s in a.seeds.split(',')]
    jobs = [(a.scenario, a.driver, shadows, s) for s in seeds]
    print(f'{a.scenario}, validation stretch, driver {a.driver}, seeds '
          f'{a.seeds}: {len(seeds)} run(s) on {a.jobs} process(es)...',
          file=sys.stderr)
    with multiprocessing.get_context('spawn').Pool(a.jobs) as pool:
        results = []
        for res in pool.imap(_one, jobs):
            results.append(res)
            print(f'  {len(results)}/{len(seeds)} seeds done',
                  file=sys.stderr)
    res = regret.combine(results)
    names = list(dict.fromkeys([a.driver] + shadows))
    print(table(res, names))
    if a.json:
        with open(a.json, 'w') as f:
            json.dump({'scenario': a.scenario, 'driver': a.driver,
                       'seeds': seeds, 'per_seed': results,
                       'total': res}, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
