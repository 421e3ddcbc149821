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

"""Moves planned over a forecast of the coming load (issue 11).

The queueing gate (:mod:`strategies.queueing`) values a move with the
load held as it is now. This planner values it over a forecast of every
host's background and every VNF's demand (cores, per step) for the
coming ``T`` steps: at each step the host's cores are shared among its
demand, each VNF holds the M/M/1 count of its utilisation, and a move's
value is the request-seconds the whole cluster holds without it less
those it holds with it. While the move's live migration runs, the copy
threads load both hosts and the VNF stays on its source; its
switch-over outage is charged as :func:`queueing.move_value` charges it;
from the step the migration ends, the VNF's demand is its destination's.

Moves are chosen greedily, the most valuable first, each on the state the
earlier ones leave, until none is worth more than ``min_gain``
request-seconds or the budget is spent. Pure functions of arrays, as
OpenStack Neat's overload detectors: the forecast is the caller's.
"""

import dataclasses

import numpy as np

from watcher_failpredict.strategies import queueing


@dataclasses.dataclass(frozen=True)
class Forecast:
    """What the planner sees of the coming ``T`` steps.

    :param bg: (hosts, T) each host's background demand (cores): all it
        runs besides the VNFs
    :param demand: (vnfs, T) each VNF's demand (cores)
    :param vcpus: (vnfs,) each VNF's vCPUs
    :param cores: (hosts,) each host's cores
    :param host_of: (vnfs,) where each VNF is now
    :param dt: seconds per step
    """

    bg: np.ndarray
    demand: np.ndarray
    vcpus: np.ndarray
    cores: np.ndarray
    host_of: np.ndarray
    dt: float

    def __post_init__(self):
        bg, dem = np.asarray(self.bg, float), np.asarray(self.demand, float)
        if bg.ndim != 2 or dem.ndim != 2 or bg.shape[1] != dem.shape[1]:
            raise ValueError(f'bg (hosts, T) and demand (vnfs, T) must '
                             f'share T; got {bg.shape} and {dem.shape}')
        for name, arr, n in (('vcpus', self.vcpus, dem.shape[0]),
                             ('host_of', self.host_of, dem.shape[0]),
                             ('cores', self.cores, bg.shape[0])):
            if np.asarray(arr).shape != (n,):
                raise ValueError(f'{name} must have shape ({n},), got '
                                 f'{np.asarray(arr).shape}')
        bad = [n for n, a in (('bg', bg), ('demand', dem)) if
               not np.isfinite(a).all()]
        if bad:
            raise ValueError(f'the forecast of {" and ".join(bad)} has '
                             f'missing values: a plan cannot rest on them')

    @property
    def steps(self):
        return self.demand.shape[1]


@dataclasses.dataclass(frozen=True)
class Move:
    """A planned move: VNF ``vnf`` to host ``dest``, its migration ending
    after ``steps`` steps, worth ``gain`` request-seconds.
    """

    vnf: int
    dest: int
    steps: int
    gain: float


def host_path(fc, where, host, extra):
    """(T,) requests held per step by the VNFs on ``host`` when VNF v is
    on ``where[v, t]`` at step t, ``extra`` (T,) cores added (copy
    threads).
    """
    on = where == host
    demand = np.where(on, fc.demand, 0.0)
    total = fc.bg[host] + demand.sum(axis=0) + extra
    g = queueing.speed(total, float(fc.cores[host]))
    with np.errstate(divide='ignore', invalid='ignore'):
        rho = demand / (np.maximum(fc.vcpus, 1.0)[:, None] * g[None, :])
    held = np.where(on, queueing.requests_in_system(rho), 0.0)
    return held.sum(axis=0)


def outage_cost(outage_s):
    """Request-seconds charged for a VNF paused ``outage_s`` seconds
    (plus the network's switch-over), as :func:`queueing.move_value`
    charges it.
    """
    return (max(float(outage_s), 0.0) + queueing.SWITCHOVER_S) * float(
        queueing.requests_in_system(2 * queueing.KNEE))


def move_gain(fc, where, extra, vnf, dest, steps, outage_s, base=None):
    """Request-seconds the move spares over the forecast (negative: it
    costs), on the state ``where``/``extra``.

    :param base: ``{host: host_path(fc, where, host, extra[host])}`` of
        that state, when the caller has them (every candidate of a round
        shares them)
    """
    src = int(where[vnf, 0])
    if src == dest:
        return 0.0
    m = min(max(int(steps), 0), fc.steps)
    if base is None:
        base = {h: host_path(fc, where, h, extra[h]) for h in (src, dest)}
    before = base[src] + base[dest]
    after_where = where.copy()
    after_where[vnf, m:] = dest
    over = np.zeros(fc.steps)
    over[:m] = queueing.MIGRATION_OVERHEAD_CORES
    after = host_path(fc, after_where, src, extra[src] + over) + host_path(
        fc, after_where, dest, extra[dest] + over)
    cost = outage_cost(outage_s) if m < fc.steps else 0.0
    return float(np.sum(before - after) * fc.dt - cost)


def plan(fc, candidates, migration, max_moves, min_gain=0.0):
    """Greedy moves over the forecast.

    :param fc: a Forecast
    :param candidates: ``candidates(planned)`` -> [(vnf, dest)], the
        moves allowed (room, cooldown) after the moves ``planned`` =
        [(vnf, dest)]
    :param migration: {vnf: (seconds, outage seconds)} of its live
        migration started now; a VNF missing from it, or whose seconds
        are not finite, is not moved
    :param max_moves: the budget
    :param min_gain: request-seconds a move must spare to be planned
    :returns: [Move], in the order chosen
    """
    where = np.repeat(np.asarray(fc.host_of, dtype=int)[:, None], fc.steps,
                      axis=1)
    extra = np.zeros(fc.bg.shape)
    moves, moved = [], set()
    for _ in range(int(max_moves)):
        best = None
        base = {}
        for vnf, dest in candidates([(m.vnf, m.dest) for m in moves]):
            if vnf in moved or vnf not in migration:
                continue
            seconds, outage = migration[vnf]
            if not np.isfinite(seconds):
                continue
            steps = int(np.ceil(float(seconds) / fc.dt))
            for h in (int(where[vnf, 0]), int(dest)):
                if h not in base:
                    base[h] = host_path(fc, where, h, extra[h])
            gain = move_gain(fc, where, extra, vnf, dest, steps, outage,
                             base)
            if gain > min_gain and (best is None or gain > best.gain):
                best = Move(int(vnf), int(dest), steps, gain)
        if best is None:
            break
        src = int(where[best.vnf, 0])
        m = min(best.steps, fc.steps)
        where[best.vnf, m:] = best.dest
        extra[src, :m] += queueing.MIGRATION_OVERHEAD_CORES
        extra[best.dest, :m] += queueing.MIGRATION_OVERHEAD_CORES
        moved.add(best.vnf)
        moves.append(best)
    return moves
