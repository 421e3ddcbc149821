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

"""The ``planner-seasonal`` policy: the queueing planner on a checked
seasonal forecast (issue 11).

``lookahead-seasonal`` showed that a search on a seasonal forecast takes
the oracle's whole gain where the load repeats, and is catastrophic where
it does not. This policy is what the strategy can run instead of that
search: it sees only what collectd measures, each server's background
(its load average less its VNFs' demand) and each VNF's demand, in cores,
and values a move with the strategy's queueing model over the coming
look-ahead (:mod:`strategies.stay_planner`), not with the testbed's
physics. It plans only while its forecast has been right: at each
decision the forecast it would have made one look-ahead ago is compared
with what happened (:func:`strategies.load_forecast.backtest_errors`);
when the hosts' mean error exceeds :data:`load_forecast.TOLERANCE` of
their cores, the decision is the ``fallback`` policy's (the strategy's
own reactive rule), which acts on what is measured now.

Cycles are estimated once, on the stretch before the run, as the
cyclic model's are. The testbed's own migration plan stands for the
strategy's estimate of a migration's duration and outage. Not the
strategy yet: the measure of the piece the strategy lacks.
"""

import numpy as np

from watcher_failpredict.prediction import cycles
from watcher_failpredict.strategies import load_forecast
from watcher_failpredict.strategies import stay_planner
from watcher_failpredict.testbed import lookahead


class SeasonalQueueingPlanner:
    """The ``planner-seasonal`` policy.

    :param scn: the scenario
    :param before: the Testbed of the stretch before the run
    :param fallback: the policy deciding when the forecast is not trusted
    :param tolerance: see :data:`load_forecast.TOLERANCE`
    """

    name = 'planner-seasonal'
    metrics = None

    def __init__(self, scn, before, fallback,
                 tolerance=load_forecast.TOLERANCE):
        self.scn = scn
        self.before = before
        self.fallback = fallback
        self.tolerance = float(tolerance)
        self.look_ahead = lookahead.look_ahead_seconds(scn)
        steps = int(round(self.look_ahead / before.dt))
        per = self._trigger_steps(before)
        # in steps: longer than the look-ahead, so that the forecast reads
        # only the past
        self.bg_cycles = cycles.estimate_host_cycles(
            before.bg, 1, per, steps).astype(int)
        self.rate_cycles = cycles.estimate_host_cycles(
            before.rate, 1, per, steps).astype(int)
        self.calls = 0
        #: decisions planned on the forecast and left to the fallback
        self.planned = 0
        self.fell_back = 0
        #: the hosts' mean forecast error (share of cores) at each decision
        self.errors = []

    def _trigger_steps(self, tb):
        return max(int(round(float(self.scn['trigger']['period']) / tb.dt)),
                   1)

    def forecast(self, tb):
        """``(background, VNF demand, error share)`` over the look-ahead,
        from the history only; None at the stretch's end.
        """
        per = self._trigger_steps(tb)
        full = int(round(self.look_ahead / tb.dt))
        steps = min(full, tb.n_steps - tb.k)
        if steps <= 0:
            return None
        bg_past = np.concatenate([self.before.bg, tb.bg[:, :tb.k]], axis=1)
        rate_past = np.concatenate([self.before.rate, tb.rate[:, :tb.k]],
                                   axis=1)
        bg = load_forecast.seasonal_forecast(bg_past, self.bg_cycles, steps,
                                             per)
        rate = load_forecast.seasonal_forecast(rate_past, self.rate_cycles,
                                               steps, per)
        demand = np.minimum(np.repeat(rate, tb.n_hops, axis=0) *
                            tb.cost[:, None], tb.vcpus)
        errors = load_forecast.backtest_errors(bg_past, self.bg_cycles, full,
                                               per)
        return bg, demand, errors

    def decide(self, tb):
        self.calls += 1
        got = self.forecast(tb)
        if got is None:
            return []
        bg, demand, errors = got
        ok, share = load_forecast.trusted(
            errors, np.full(tb.n_servers, tb.cores), self.tolerance)
        self.errors.append(share)
        if not ok:
            self.fell_back += 1
            return self.fallback.decide(tb)
        self.planned += 1
        fc = stay_planner.Forecast(
            bg=bg, demand=demand, vcpus=np.full(tb.n_vnfs, tb.vcpus),
            cores=np.full(tb.n_servers, tb.cores), host_of=tb.host_of,
            dt=tb.dt)

        def allowed(planned):
            return [m for ms in lookahead.candidates(
                tb, self.scn, planned).values() for m in ms]
        moving = {v for v in range(tb.n_vnfs) if not tb.migrating(v)}
        plan = stay_planner.plan(
            fc, allowed, {v: tb.migration_plan(v) for v in moving},
            int(self.scn['strategy']['max_migrations']))
        return [(m.vnf, m.dest) for m in plan]
