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

"""What the forecast by analogy adds to a planned audit.

Planned mode forecasts the hosts it weighs (at most 24 at any cluster
size: strategies/planned_mode.py) over ``planner_history`` (6 h by
default) at ``planner_granularity`` (10 s); where the seasonal forecast
fails its check it also makes, and checks, the one by analogy
(``planner_forecast=seasonal_or_analog``). This times
``forecast_inputs.outlook`` on such a history whose cycles slowed down
two hours ago (the seasonal one fails, both are made), against the
seasonal one alone on the same data in the same run, and prints the
milliseconds and the ratio; then the worst case, a load that repeats
nothing (both forecasts fail, and so do their time envelopes, tried at
the strategy's default margin, ``period``), against the seasonal one on
those data. ``bench/decision_latency.py --mode planned``
times the whole audit (its one hour of history is too short for the
analogy: four hours are needed).

Usage::

    .venv/bin/python bench/forecast_cost.py --runs 20
"""

import argparse
import time

import numpy as np

from watcher_failpredict.strategies import forecast_inputs

STEP = 10.0
HISTORY = 6 * 3600
LOOK_AHEAD = 1260
PERIOD = 300


def history(hosts, vnfs, seed=0):
    """``(background, demand)``: square and sine waves of 80-160 min
    cycles per host that run 30 % slower over the last two hours, plus
    noise; each VNF's demand an hourly sine.
    """
    rng = np.random.default_rng(seed)
    t = STEP * np.arange(int(HISTORY / STEP))
    since = t[-1] - 7200.0
    clock = np.where(t < since, t, since + (t - since) / 1.3)
    bg = np.empty((hosts, t.size))
    for h in range(hosts):
        cycle = rng.uniform(4800.0, 9600.0)
        x = (clock / cycle + rng.uniform()) % 1.0
        shape = (x < 0.3) if h % 2 else (1 - np.cos(2 * np.pi * x)) / 2
        bg[h] = 2.0 + 12.0 * shape + rng.normal(0.0, 0.6, t.size)
    demand = 0.5 + 0.4 * np.sin(2 * np.pi * t / 3600.0)[None, :].repeat(
        vnfs, axis=0)
    return np.maximum(bg, 0.0), demand


def timed(runs, forecast, bg, demand, cores, margin=0):
    spent, seen = [], None
    for _ in range(runs):
        start = time.perf_counter()
        seen = forecast_inputs.outlook(
            bg, demand, cores, int(LOOK_AHEAD / STEP), int(PERIOD / STEP),
            step=STEP, forecast=forecast, margin=margin)
        spent.append(time.perf_counter() - start)
    return float(np.median(spent)), seen


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--runs', type=int, default=20,
                        help='timed forecasts per kind (default: 20)')
    parser.add_argument('--hosts', type=int, default=24,
                        help='hosts weighed (default: 24, planned mode\'s '
                             'most)')
    parser.add_argument('--vnfs', type=int, default=240)
    args = parser.parse_args(argv)
    bg, demand = history(args.hosts, args.vnfs)
    cores = np.full(args.hosts, 16.0)
    base, seasonal = timed(args.runs, 'seasonal', bg, demand, cores)
    both, chosen = timed(args.runs, 'seasonal_or_analog', bg, demand,
                         cores)
    print(f'{args.hosts} hosts, {args.vnfs} VNFs, {HISTORY // 3600} h at '
          f'{STEP:.0f} s, look-ahead {LOOK_AHEAD} s, median of {args.runs}')
    print(f'seasonal            {1000 * base:8.1f} ms  missed '
          f'{100 * seasonal.share:.0f} % (trusted: {seasonal.trusted})')
    print(f'seasonal_or_analog  {1000 * both:8.1f} ms  planned on '
          f'{chosen.forecast}, missed {100 * chosen.share:.0f} % (trusted: '
          f'{chosen.trusted})  {both / base:.1f}x, '
          f'+{1000 * (both - base):.1f} ms per planned audit')
    noise = np.random.default_rng(1).uniform(0.0, 16.0, bg.shape)
    base, seasonal = timed(args.runs, 'seasonal', noise, demand, cores)
    worst, chosen = timed(args.runs, 'seasonal_or_analog', noise, demand,
                          cores, margin=int(PERIOD / STEP))
    print(f'a load that repeats nothing: seasonal {1000 * base:.1f} ms; '
          f'both forecasts and their envelopes {1000 * worst:.1f} ms '
          f'(trusted: {chosen.trusted})  {worst / base:.1f}x, '
          f'+{1000 * (worst - base):.1f} ms per audit')


if __name__ == '__main__':
    main()
