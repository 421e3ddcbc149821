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
search. It reads only what collectd reports, at collectd's interval: each
VNF's CPU (its demand, in cores) and each server's load average (its
runnable demand) less the CPU of the VNFs on it at the time (its
background; the placement at each sample from the migrations done). It
never reads the chains' request rates, their queues or the testbed's own
load series. It values a move with the strategy's queueing model over
the coming look-ahead (:mod:`strategies.stay_planner`), not with the
testbed's physics, and plans only while its forecast has been right: at
each decision the forecast it would have made one look-ahead ago is
compared with what happened (:func:`strategies.load_forecast.
backtest_residuals`); when the hosts' mean error over the worst trigger
period of it exceeds :data:`load_forecast.TOLERANCE` of their cores
(:func:`strategies.load_forecast.trusted`), the decision is the
``fallback`` policy's (the strategy's own reactive rule), which acts on
what is measured now.

Each server's and VNF's cycle is estimated once, on the stretch before
the run, as the cyclic model's are. The testbed's own migration plan
stands for the strategy's estimate of a migration's duration and outage.
The strategy runs the same planner itself (``mode=planned``,
:mod:`strategies.planned_mode`; the ``proposed-planned`` policy); this
testbed twin is kept as the measure it was first taken with.

``planner-perfect`` (:class:`PerfectForecastPlanner`) runs the same
planner, with planned mode's gate and destination rule, on the true
future instead of a forecast: what the forecast costs planned mode.
"""

import numpy as np

from watcher_failpredict.prediction import cycles
from watcher_failpredict.strategies import forecast_inputs
from watcher_failpredict.strategies import load_forecast
from watcher_failpredict.strategies import move_gate
from watcher_failpredict.strategies import placement
from watcher_failpredict.strategies import stay_planner
from watcher_failpredict.testbed import cluster
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
        #: the planner's step: collectd's interval
        self.dt = float(scn['metrics_interval'])
        steps = int(round(self.look_ahead / self.dt))
        per = self._trigger_steps()
        # in steps: longer than the look-ahead, so that the forecast reads
        # only the past
        bg, demand = self._before = self._measured(before)
        self.bg_cycles = cycles.estimate_host_cycles(
            bg, 1, per, steps).astype(int)
        self.vnf_cycles = cycles.estimate_host_cycles(
            demand, 1, per, steps).astype(int)
        self.calls = 0
        #: decisions planned on the forecast and left to the fallback
        self.planned = 0
        self.fell_back = 0
        #: the hosts' mean forecast error (share of cores) at each decision
        self.errors = []

    def _trigger_steps(self):
        return lookahead.trigger_steps(self.scn, self.dt)

    def _measured(self, tb):
        """``(background, VNF demand)`` (cores, per collectd sample) of
        ``tb``'s stretch as collectd reports it: each VNF's CPU, and each
        server's load average less the CPU of the VNFs on it then.
        """
        _, host, inst = tb.metric_samples(0)
        demand = inst['cpu'] / 100.0 * tb.vcpus
        n = demand.shape[1]
        where = np.repeat(cluster.initial_placement(
            tb.n_chains, tb.n_hops, tb.n_servers)[:, None], n, axis=1)
        every = float(self.scn['metrics_interval'])
        for m in sorted(tb.migrations, key=lambda m: m.end):
            if m in tb.active:
                continue
            where[m.vnf, int(np.ceil(m.end / every)):] = m.dst
        vnf_sum = np.zeros_like(host['load'])
        for h in range(tb.n_servers):
            vnf_sum[h] = np.where(where == h, demand, 0.0).sum(axis=0)
        return np.maximum(host['load'] - vnf_sum, 0.0), demand

    def forecast(self, tb):
        """``(background, VNF demand, backtest residuals)`` over the
        look-ahead, from the history only; None at the stretch's end.
        """
        per = self._trigger_steps()
        full = int(round(self.look_ahead / self.dt))
        steps = min(full, int((tb.n_steps - tb.k) * tb.dt / self.dt))
        if steps <= 0:
            return None
        now_bg, now_dem = self._measured(tb)
        bg_past = np.concatenate([self._before[0], now_bg], axis=1)
        dem_past = np.concatenate([self._before[1], now_dem], axis=1)
        bg = load_forecast.seasonal_forecast(bg_past, self.bg_cycles, steps,
                                             per)
        demand = load_forecast.seasonal_forecast(dem_past, self.vnf_cycles,
                                                 steps, per)
        residuals = load_forecast.backtest_residuals(bg_past, self.bg_cycles,
                                                     full, per)
        return bg, demand, residuals

    def decide(self, tb):
        self.calls += 1
        got = self.forecast(tb)
        if got is None:
            return []
        bg, demand, residuals = got
        ok, share = load_forecast.trusted(
            residuals, np.full(tb.n_servers, tb.cores),
            self._trigger_steps(), self.tolerance)
        self.errors.append(share)
        if not ok:
            self.fell_back += 1
            return self.fallback.decide(tb)
        self.planned += 1
        return _plan_on(self.scn, tb, _forecast(tb, self.dt, bg, demand))


def _forecast(tb, dt, bg, demand):
    """``bg`` (servers, T) and ``demand`` (VNFs, T), cores per ``dt`` s,
    as the strategy's planner sees a forecast of ``tb``.
    """
    return stay_planner.Forecast(
        bg=bg, demand=demand, vcpus=np.full(tb.n_vnfs, tb.vcpus),
        cores=np.full(tb.n_servers, tb.cores), host_of=tb.host_of, dt=dt)


def _plan_on(scn, tb, fc, sources=None, keep=None):
    """The strategy's planner (:func:`strategies.stay_planner.plan`) over
    the forecast ``fc`` (:func:`_forecast`), on the moves the strategy's
    rules allow; only VNFs on the servers marked in ``sources`` (all when
    None) may leave, and only the moves the filter ``keep(planned)``
    returns, a callable of (vnf, destination), passes (all when None).
    """
    def allowed(planned):
        ok = keep(planned) if keep is not None else None
        return [(v, d) for ms in lookahead.candidates(
            tb, scn, planned).values() for v, d in ms
            if (sources is None or sources[tb.host_of[v]]) and
            (ok is None or ok(v, d))]
    moving = {v for v in range(tb.n_vnfs) if not tb.migrating(v)}
    plan = stay_planner.plan(
        fc, allowed, {v: tb.migration_plan(v) for v in moving},
        int(scn['strategy']['max_migrations']))
    return [(m.vnf, m.dest) for m in plan]


class PerfectForecastPlanner:
    """The ``planner-perfect`` measure: the strategy's planned mode on the
    true future.

    At each decision the forecast is what the coming look-ahead will
    bring, known exactly: each server's background and each VNF's offered
    demand (the testbed's exogenous load, cores), averaged to collectd's
    interval. A VNF leaves only a server whose consumers that future sees
    get less than ``speed_floor`` of the CPU they ask for over some
    trigger period (the strategy's gate, :func:`strategies.move_gate.
    lowest_period_speed`), and goes only where the host stays out of
    failure state with it (the strategy's destination rule, on the CPU
    measured over the last trigger period); the moves are valued by the
    strategy's queueing model (:mod:`strategies.stay_planner`), not by the
    testbed's physics.
    Not a policy Watcher can run: what planned mode would decide with a
    perfect forecast, so that its distance to the oracle splits into what
    its forecast costs and what its model of a move costs.

    :param scn: the scenario
    :param speed_floor: the strategy's ``speed_floor``
    """

    name = 'planner-perfect'
    metrics = None

    def __init__(self, scn, speed_floor):
        self.scn = scn
        self.speed_floor = float(speed_floor)
        self.look_ahead = lookahead.look_ahead_seconds(scn)
        self.dt = float(scn['metrics_interval'])
        self.calls = 0

    def forecast(self, tb):
        """``(background, VNF demand)`` (cores per collectd interval) of
        the coming look-ahead, as it will be; None at the stretch's end.
        """
        per = max(int(round(self.dt / tb.dt)), 1)
        steps = min(int(round(self.look_ahead / self.dt)),
                    (tb.n_steps - tb.k) // per)
        if steps <= 0:
            return None
        ks = np.arange(tb.k, tb.k + steps * per)
        bg = tb.bg[:, ks].reshape(tb.n_servers, steps, per).mean(axis=2)
        demand = np.stack([tb.offered_cores(k) for k in ks], axis=1)
        return bg, demand.reshape(tb.n_vnfs, steps, per).mean(axis=2)

    def decide(self, tb):
        self.calls += 1
        got = self.forecast(tb)
        if got is None:
            return []
        fc = _forecast(tb, self.dt, *got)
        _, sources = move_gate.starved_over(
            forecast_inputs.host_demand(fc), fc.cores,
            lookahead.trigger_steps(self.scn, self.dt), self.speed_floor)
        if not sources.any():
            return []
        return _plan_on(self.scn, tb, fc, sources, self._out_of_failure(tb))

    def _out_of_failure(self, tb):
        """The strategy's destination rule: a destination must stay out
        of failure state (its mean CPU over the trigger period below the
        threshold) with the VNF's CPU over that period added, the moves
        planned before counted.
        """
        _, host, inst = tb.metric_samples(0)
        n = min(lookahead.trigger_steps(self.scn, self.dt),
                host['cpu'].shape[1])
        host_cpu = host['cpu'][:, -n:].mean(axis=1) if n else np.zeros(
            tb.n_servers)
        points = placement.cpu_contribution(
            inst['cpu'][:, -n:].mean(axis=1) if n else np.zeros(tb.n_vnfs),
            tb.vcpus, tb.cores)
        threshold = float(self.scn['trigger']['threshold'])

        def keep(planned):
            cpu = host_cpu.copy()
            for vnf, dest in planned:
                cpu[dest] += points[vnf]
                cpu[tb.host_of[vnf]] -= points[vnf]
            return lambda vnf, dest: not placement.is_failing(
                cpu[dest] + points[vnf], threshold)
        return keep
