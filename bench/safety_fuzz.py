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

"""The strategy's safety invariants over many random clusters.

Runs one audit of ``predicted_least_failure`` on each of ``--clusters``
seeded random clusters (watcher_failpredict/testbed/random_clusters.py:
the same generator and checks as the property-based test
tests/unit/strategies/test_safety_properties.py, which runs a few
hundred) and prints

* crashes: audits that raised anything but the strategy's own
  FailurePredictionError, by message;
* audits that failed cleanly, by reason;
* the planned migrations and every breach of the safety invariants
  (over-committed, failing-by-the-strategy's-own-numbers, disabled/down,
  unevaluable, garbage-reporting and same-host destinations, moves of
  non-active, locked, excluded or garbage-reporting instances,
  max_migrations and cooldown breaches).

Progress goes to stderr every ``--progress`` clusters, the report to stdout.
In-memory, no network.

Usage::

    .venv/bin/python bench/safety_fuzz.py                  # 20,000 clusters
    .venv/bin/python bench/safety_fuzz.py --clusters 2000 --seed 7
"""

import argparse
import collections
import logging
import random
import sys
import time
import warnings

from watcher_failpredict.testbed import random_clusters as rc


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--clusters', type=int, default=20000)
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the first cluster; cluster i uses '
                             'seed + i')
    parser.add_argument('--progress', type=int, default=1000)
    args = parser.parse_args(argv)
    # the strategy logs every decision; a warning per odd cluster would
    # drown the report
    logging.disable(logging.CRITICAL)
    warnings.simplefilter('ignore')

    crashes, failed = collections.Counter(), collections.Counter()
    breaches = collections.Counter({name: 0 for name in rc.INVARIANTS})
    cases = collections.Counter()
    moves = 0
    first_crash = {}
    start = time.monotonic()
    for i in range(args.clusters):
        seed = args.seed + i
        sc = rc.random_scenario(random.Random(seed))
        out = rc.run(sc)
        cases.update(sc.cases())
        if out.crash:
            crashes[out.crash] += 1
            first_crash.setdefault(out.crash, seed)
        if out.failed:
            # the host names differ per cluster; the reason's kind does not
            failed[out.failed.split(':')[0]] += 1
        moves += len(out.moves)
        breaches.update(out.breaches)
        done = i + 1
        if done % args.progress == 0 or done == args.clusters:
            rate = done / (time.monotonic() - start)
            print(f'{done}/{args.clusters} clusters, {rate:.0f}/s, '
                  f'{sum(crashes.values())} crashes, '
                  f'{sum(breaches.values())} breaches',
                  file=sys.stderr, flush=True)
    elapsed = time.monotonic() - start

    print(f'clusters: {args.clusters} (seeds {args.seed}..'
          f'{args.seed + args.clusters - 1}) in {elapsed:.0f} s '
          f'({args.clusters / elapsed:.0f}/s)')
    print('clusters holding: ' + ', '.join(
        f'{name} {count}' for name, count in cases.items()))
    print(f'crashes: {sum(crashes.values())}')
    for message, count in crashes.most_common():
        print(f'  {count:6d}  {message} (first seed {first_crash[message]})')
    print(f'audits failed cleanly: {sum(failed.values())}')
    for reason, count in failed.most_common():
        print(f'  {count:6d}  {reason}')
    print(f'planned migrations: {moves}')
    print('safety breaches:')
    for name in rc.INVARIANTS:
        print(f'  {breaches[name]:6d}  {name}')
    return 1 if crashes or sum(breaches.values()) else 0


if __name__ == '__main__':
    sys.exit(main())
