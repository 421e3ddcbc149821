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

import collections
import dataclasses

import numpy as np

from watcher_failpredict.strategies import queueing


#: Relative difference under which two moves' values tie, the first
#: asked for kept: VNFs alike are worth the same, and the rounding of a
#: sum must not choose between them.
TIE = 1e-9


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
    :param bg_high: (hosts, T) the background a VNF arriving on a host is
        valued against, when it is not ``bg`` (a forecast's time
        envelope: a departure valued on its low, an arrival on its high);
        None: ``bg``
    """

    bg: np.ndarray
    demand: np.ndarray
    vcpus: np.ndarray
    cores: np.ndarray
    host_of: np.ndarray
    dt: float
    bg_high: np.ndarray = None

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
        if self.bg_high is not None and \
                np.shape(self.bg_high) != bg.shape:
            raise ValueError(f'bg_high must have the shape of bg '
                             f'{bg.shape}, got {np.shape(self.bg_high)}')
        bad = [n for n, a in (('bg', bg), ('demand', dem),
                              ('bg_high', self.bg_high))
               if a is not None and not np.isfinite(a).all()]
        if bad:
            raise ValueError(f'the forecast of {" and ".join(bad)} has '
                             f'missing values: a plan cannot rest on them')

    @property
    def steps(self):
        return self.demand.shape[1]

    def background(self, host, arriving=False):
        """(T,) ``host``'s background, as a VNF arriving there values
        it when ``arriving``.
        """
        if arriving and self.bg_high is not None:
            return self.bg_high[host]
        return self.bg[host]


@dataclasses.dataclass(frozen=True)
class Move:
    """A planned move: VNF ``vnf`` to host ``dest``, its migration ending
    after ``steps`` steps, worth ``gain`` request-seconds.
    """

    vnf: int
    dest: int
    steps: int
    gain: float


def host_path(fc, where, host, extra, arriving=False):
    """(T,) requests held per step by the VNFs on ``host`` when VNF v is
    on ``where[v, t]`` at step t, ``extra`` (T,) cores added (copy
    threads); ``arriving``: on the background a VNF arriving there is
    valued against (:meth:`Forecast.background`).
    """
    rows = _rows_on(where, host)
    return _path(fc, where[rows], rows, host, extra, arriving)


def _rows_on(where, host):
    """The VNFs on ``host`` at some step."""
    return np.flatnonzero((where == host).any(axis=1))


def _path(fc, w, rows, host, extra, arriving=False):
    """:func:`host_path` over the VNFs ``rows`` alone, ``w`` their rows
    of ``where``: the others are never on ``host``; ``arriving``: on the
    background a VNF arriving there is valued against.
    """
    on = w == host
    demand = np.where(on, fc.demand[rows], 0.0)
    total = fc.background(host, arriving) + demand.sum(axis=0) + extra
    g = queueing.speed(total, float(fc.cores[host]))
    with np.errstate(divide='ignore', invalid='ignore'):
        rho = demand / (np.maximum(fc.vcpus[rows], 1.0)[:, None] *
                        g[None, :])
    held = np.where(on, queueing.requests_in_system(rho), 0.0)
    return held.sum(axis=0)


def _path_after(fc, where, rows, vnf, dest, m, host, extra):
    """:func:`_path` of ``host`` once VNF ``vnf`` is on ``dest`` from step
    ``m`` (``rows``: the VNFs on ``host`` at some step before).
    """
    rows = np.union1d(rows, [vnf])
    w = where[rows]
    w[np.searchsorted(rows, vnf), m:] = dest
    return _path(fc, w, rows, host, extra, arriving=host == dest)


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

    :param base: ``{host: host_path(fc, where, host, extra[host],
        arriving=host == dest)}`` of that state, when the caller has them
        (every candidate of a round shares them)
    """
    src = int(where[vnf, 0])
    if src == dest:
        return 0.0
    m = min(max(int(steps), 0), fc.steps)
    if base is None:
        base = {h: host_path(fc, where, h, extra[h], arriving=h == dest)
                for h in (src, dest)}
    over = _overhead(fc, m)
    spared = _spared(fc, where, extra, base, _rows_on(where, src), vnf,
                     dest, m, src, over) + \
        _spared(fc, where, extra, base, _rows_on(where, dest), vnf, dest, m,
                dest, over)
    return float(spared * fc.dt - _cost(outage_s, m, fc))


def _overhead(fc, m):
    over = np.zeros(fc.steps)
    over[:m] = queueing.MIGRATION_OVERHEAD_CORES
    return over


def _cost(outage_s, m, fc):
    return outage_cost(outage_s) if m < fc.steps else 0.0


def _spared(fc, where, extra, base, rows, vnf, dest, m, host, over):
    """Requests (summed over the steps) ``host`` holds without the move
    less with it.
    """
    return float(np.sum(base[host] - _path_after(
        fc, where, rows, vnf, dest, m, host, extra[host] + over)))


def plan(fc, candidates, migration, max_moves, min_gain=0.0):
    """Greedy moves over the forecast.

    Each round values a VNF's departure from its source once, and bounds
    what any of its moves can be worth: a VNF arriving on a host slows
    the VNFs there and holds at least its own requests at full speed, so
    no move of it spares more than its departure less that. The VNFs are
    valued against every destination in the order of their bounds, until
    no bound left can reach the best move found: the same choice as
    valuing every candidate (ties to the first asked), at a fraction of
    the cost on a large cluster.

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
        best = _best_move(fc, where, extra, migration, min_gain, [
            (int(v), int(d)) for v, d in candidates(
                [(m.vnf, m.dest) for m in moves])
            if v not in moved and v in migration and
            np.isfinite(migration[v][0]) and int(where[v, 0]) != int(d)])
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


def _beats(gain, best):
    """Whether ``gain`` beats the Move ``best`` (None) beyond a tie."""
    return best is None or gain > best.gain + TIE * max(abs(best.gain), 1.0)


#: What a round knows of a VNF's leaving its source: its migration's
#: steps (``m`` within the forecast) and copy load, the requests its
#: departure spares there, its cost, and the bound on any of its moves.
_Leaving = collections.namedtuple('_Leaving',
                                  'steps m over leaving cost bound')


def _best_move(fc, where, extra, migration, min_gain, cands):
    """The most valuable of ``cands`` [(vnf, dest)] on the state
    ``where``/``extra``, the first asked on a tie; None when none is
    worth more than ``min_gain``.
    """
    base, rows, arrival_base = {}, {}, {}

    def held(h, arriving=False):
        # the paths of host h's VNFs, in a cache per background: an
        # arrival is valued on an envelope's high, when there is one
        cache = arrival_base if arriving and fc.bg_high is not None \
            else base
        if h not in cache:
            if h not in rows:
                rows[h] = _rows_on(where, h)
            cache[h] = _path(fc, where[rows[h]], rows[h], h, extra[h],
                             arriving)
        return cache

    vnfs = {}
    for vnf, dest in cands:
        if vnf in vnfs:
            continue
        seconds, outage = migration[vnf]
        steps = int(np.ceil(float(seconds) / fc.dt))
        m = min(max(steps, 0), fc.steps)
        src = int(where[vnf, 0])
        held(src)
        over = _overhead(fc, m)
        leaving = _spared(fc, where, extra, base, rows[src], vnf, -1, m, src,
                          over)
        own = float(np.sum(queueing.requests_in_system(
            fc.demand[vnf, m:] / max(float(fc.vcpus[vnf]), 1.0))))
        cost = _cost(outage, m, fc)
        vnfs[vnf] = _Leaving(steps, m, over, leaving, cost,
                             (leaving - own) * fc.dt - cost)
    dests = {}
    for vnf, dest in cands:
        dests.setdefault(vnf, []).append(dest)
    gains, found = {}, None
    for vnf in sorted(vnfs, key=lambda v: -vnfs[v].bound):
        steps, m, over, leaving, cost, bound = vnfs[vnf]
        if bound <= min_gain or (found is not None and bound < found.gain -
                                 2 * TIE * max(abs(found.gain), 1.0)):
            break
        for dest in dests[vnf]:
            paths = held(dest, arriving=True)
            gain = float((leaving + _spared(
                fc, where, extra, paths, rows[dest], vnf, dest, m, dest,
                over)) * fc.dt - cost)
            gains[vnf, dest] = gain
            if gain > min_gain and (found is None or gain > found.gain):
                found = Move(vnf, dest, steps, gain)
    best = None
    for vnf, dest in cands:
        gain = gains.get((vnf, dest))
        if gain is not None and gain > min_gain and _beats(gain, best):
            best = Move(vnf, dest, vnfs[vnf].steps, gain)
    return best
