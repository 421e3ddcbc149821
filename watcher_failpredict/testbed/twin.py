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

"""A scenario's twin: the same past, another future equally consistent
with it (issue 11).

A policy decides on the history only, so in two worlds whose histories
are the same up to a decision it decides the same. The twin keeps a
stretch as it is up to step ``k`` and, from there over the look-ahead,
gives one server the background its own last cycle had: the seasonal
naive forecast of its true background, the cycle estimated as the
strategy's planned mode estimates it
(:func:`strategies.forecast_inputs.replayable_cycles`)
on the same history (``planner_history`` seconds at collectd's
interval). Where a move rests on a forecast that the cycle will repeat,
the twin is the world in which it does, and running a policy on both
worlds says what refusing that move costs where the forecast was right
(``bench/twin_worlds.py``).
"""

import numpy as np

from watcher_failpredict.strategies import forecast_inputs
from watcher_failpredict.strategies import load_forecast


def last_cycle_repeated(past, period_steps, steps):
    """(steps,) the coming ``steps`` values of the row ``past`` if it
    repeats its last cycle (estimated on ``past`` as planned mode
    estimates it, longer than ``steps`` and within it); None when it has
    none.
    """
    past = np.asarray(past, dtype=float).reshape(1, -1)
    cyc = forecast_inputs.replayable_cycles(past, period_steps, steps)
    if not cyc[0]:
        return None
    return load_forecast.seasonal_forecast(past, cyc, steps,
                                           period_steps)[0]


def at_interval(row, per):
    """``row`` averaged over spans of ``per`` values, the last partial
    span dropped from the start so that the spans end at the row's end.
    """
    row = np.asarray(row, dtype=float)
    n = row.size // per
    return row[row.size - n * per:].reshape(n, per).mean(axis=1)


def repeat_cycle(tb, before, server, k, look_ahead, history, interval,
                 period):
    """Make ``tb`` (a cluster.Testbed not yet run past ``k``) the twin in
    which ``server``'s background over the ``look_ahead`` seconds from
    step ``k`` repeats its last cycle; ``before`` is the stretch
    simulated before ``tb`` (its background continues into ``tb``'s).

    :param history: seconds of background the cycle is estimated on
    :param interval: seconds per sample of that history (collectd's)
    :param period: the trigger period (seconds), the cycle estimate's
        smoothing
    :returns: the (steps,) background written, at ``tb``'s step
    :raises ValueError: when ``tb`` has run past step ``k``, or the
        history holds no cycle to repeat
    """
    if tb.k > k:
        raise ValueError(f'the testbed has run past step {k}')
    per = max(int(round(float(interval) / tb.dt)), 1)
    full = np.concatenate([before.bg[server], tb.bg[server, :k]])
    past = at_interval(full[-int(round(float(history) / tb.dt)):], per)
    steps = int(np.ceil(float(look_ahead) / (per * tb.dt)))
    ahead = last_cycle_repeated(past, max(int(round(
        float(period) / (per * tb.dt))), 1), steps)
    if ahead is None:
        raise ValueError(f'server {server}\'s background has no cycle of '
                         f'{look_ahead:.0f} s to {history:.0f} s to repeat '
                         f'at step {k}')
    end = min(k + steps * per, tb.n_steps)
    tb.bg[server, k:end] = np.repeat(ahead, per)[:end - k]
    return tb.bg[server, k:end].copy()
