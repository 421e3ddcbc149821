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

"""The look-ahead oracle: every feasible move simulated forward.

At each decision the ``oracle`` policy forks the testbed's state (the
placement, every hop's queue, the migrations under way) and steps the
forks together over the TRUE future exogenous load (each server's
background, each chain's request rate: the testbed computed both up
front) with the physics of cluster.Testbed.step(). Every fork draws the
same random numbers (common random numbers: one stream per decision,
seeded by the run's seed and the step), so two candidates differ only
by what the move changes. A candidate is scored by the headline metric
over the look-ahead: the summed response time of every request, a
timed-out one (late, or abandoned in a queue) at the client timeout,
and a request still queued when the look-ahead ends at the timeout too.

Candidates are what any policy with the strategy's decision cadence and
budget could do at this decision, and more: each movable VNF (not
migrating, not on a host that received a VNF within
``received_cooldown``: the strategy's rules) to each host with room for
it (vCPU, RAM and disk slots, counting the claims of the migrations under
way) but the host it left within ``cooldown`` seconds, from any host,
failing or not, and "no move".
Several moves: greedily, at most ``max_migrations``, each added while it
improves the score of the moves already chosen.

Pruning (one batch of forks per source before its candidates): the
*relaxation* of a source is the fork in which that host runs every
consumer at full speed (``g = 1``) for the whole look-ahead. A move off
that host can only slow every hop of every chain or leave it as fast as
in the relaxation: the moved VNF runs on its destination at ``g <= 1``
(and has a switch-over outage), the destination's other VNFs run slower
than without the move, every other host is unchanged. The response time
of a request falls with its hops' service rates, so the cost of any move
off the source is at least the relaxation's, and its gain at most
``no-move cost - relaxation cost``. The fluid model has one exception: a
hop that drains its backlog faster sends more requests per step to the
next hop, whose M/M/1 term grows; ``bound_misses`` counts the sources
whose best move beat their bound (measured, reported in the docs). A
source is skipped when its bound is below ``MIN_GAIN_SHARE`` of the
no-move cost (not measurable) or below the best gain found so far
(branch and bound, sources in decreasing bound).
"""

import dataclasses

import numpy as np

from watcher_failpredict.prediction import cycles
from watcher_failpredict.strategies import load_forecast
from watcher_failpredict.strategies import migrations
from watcher_failpredict.testbed import cluster
from watcher_failpredict.testbed import physics

#: A move must gain at least this share of the no-move rollout's cost to
#: be taken (and a source whose bound is below it is not searched): the
#: rollout's latency draws are not the run's, and a smaller difference
#: is below what a run can tell apart (moving a VNF between two quiet
#: ``paper`` hosts costs 0.1-0.6 % of the look-ahead: its switch-over).
MIN_GAIN_SHARE = 0.001


@dataclasses.dataclass(frozen=True)
class Fork:
    """One rollout: moves started now, and a host run at full speed
    (the relaxation of that source; -1 for none).
    """
    moves: tuple = ()
    free_host: int = -1


@dataclasses.dataclass
class Outcome:
    """What a batch of rollouts gave, one row per fork."""
    cost: np.ndarray        # (forks,) request-seconds over the look-ahead
    requests: np.ndarray    # (forks,) requests counted
    host_of: np.ndarray     # (forks, vnfs) placement at the end
    backlog: np.ndarray     # (forks, vnfs) queued requests at the end


def trigger_steps(scn, dt):
    """The scenario's trigger period in steps of ``dt`` s (at least 1)."""
    return max(int(round(float(scn['trigger']['period']) / dt)), 1)


def look_ahead_seconds(scn):
    """The look-ahead: the longest live migration of a VNF (at full CPU)
    plus twice ``cooldown``, rounded up to a whole decision interval. A
    VNF cannot go back before its migration ends and its cooldown has
    passed, and stays unless its new host fails in turn; what it costs
    there shows over the time it takes to be moved on, at least another
    cooldown. One cooldown (660 s
    on ``paper``) was too short: moves that paid within it cost after it,
    and the strategy's queueing rule, making fewer of them, beat the
    oracle on a short ``paper-drift`` stretch (45.3 against 109.4 ms;
    36.5 ms with two cooldowns; doc/source/testbed.rst).
    """
    mig = scn['migration']
    longest, _ = physics.migration_duration(
        scn['chains']['memory_mb'], 1.0, mig['bandwidth_mb_s'],
        mig['dirty_mb_s_at_full_cpu'], mig['setup_s'], mig['max_downtime_s'])
    every = float(scn['decision_interval'])
    need = longest + 2 * scn['strategy']['cooldown'] + \
        scn['chains']['timeout']
    return every * np.ceil(need / every)


def rollout(tb, forks, steps, seed):
    """Step ``forks`` of the testbed's state now ``steps`` steps ahead.

    :param tb: a cluster.Testbed (not modified)
    :param forks: a list of Fork
    :param seed: seeds the common random numbers every fork draws
    :returns: an Outcome
    """
    scn = tb.scn
    n_forks, n_vnfs, n_srv = len(forks), tb.n_vnfs, tb.n_servers
    n_ch, n_hops = tb.n_chains, tb.n_hops
    dt, cores = tb.dt, tb.cores
    timeout = float(scn['chains']['timeout'])
    n_samples = scn['latency_samples']
    mig = scn['migration']
    host_of = np.tile(tb.host_of, (n_forks, 1))
    backlog = np.tile(tb.backlog, (n_forks, 1))
    # migrations: those under way (in every fork) and each fork's own
    rows = [(b, m.vnf, m.src, m.dst, m.end, m.downtime)
            for b in range(n_forks) for m in tb.active]
    now = tb.k * dt
    for b, fork in enumerate(forks):
        for vnf, dst in fork.moves:
            total, downtime = tb.migration_plan(vnf)
            rows.append((b, vnf, int(tb.host_of[vnf]), dst, now + total,
                         downtime))
    rows = np.array(rows, dtype=float).reshape(-1, 6)
    m_fork, m_vnf, m_src, m_dst = (rows[:, i].astype(int) for i in range(4))
    m_end, m_outage = rows[:, 4], np.minimum(
        rows[:, 5] + mig['switchover_s'], dt)
    free = np.array([f.free_host for f in forks])
    relaxed = np.flatnonzero(free >= 0)
    row_offset = (n_srv * np.arange(n_forks))[:, None]
    cost = np.zeros(n_forks)
    requests = np.zeros(n_forks)
    rng = np.random.default_rng(seed)
    hop_cost = tb.cost
    links = n_hops * scn['chains']['link_latency']
    end = min(tb.k + steps, tb.n_steps)
    for k in range(tb.k, end):
        t0 = tb.t[k]
        # the same draws for every fork: common random numbers
        expo = rng.exponential(1.0, size=(n_ch, n_hops, n_samples))
        u_hit, u_wait = rng.random((2, n_ch, n_hops, n_samples))
        active = m_end >= t0
        finished = active & (m_end < t0 + dt)
        demand = tb.bg[:, k][None, :] + np.bincount(
            (host_of + row_offset).ravel(),
            np.tile(tb.offered_cores(k), n_forks),
            n_forks * n_srv).reshape(n_forks, n_srv)
        over = np.zeros(n_forks * n_srv)
        np.add.at(over, m_fork[active] * n_srv + m_src[active],
                  mig['overhead_cores'])
        np.add.at(over, m_fork[active] * n_srv + m_dst[active],
                  mig['overhead_cores'])
        demand += over.reshape(n_forks, n_srv)
        speed = physics.contention(demand, cores)
        speed[relaxed, free[relaxed]] = 1.0
        outage = np.zeros((n_forks, n_vnfs))
        outage[m_fork[finished], m_vnf[finished]] = m_outage[finished]
        capacity = np.clip(1.0 - outage / dt, 0.0, 1.0)
        mu = physics.service_rate(
            tb.vcpus, np.take_along_axis(speed, host_of, axis=1),
            hop_cost) * capacity
        arrival = np.broadcast_to(tb.rate[:, k], (n_forks, n_ch))
        dropped = np.zeros((n_forks, n_ch))
        sojourn = np.zeros((n_forks, n_ch, n_hops))
        wait = np.zeros((n_forks, n_ch, n_hops))
        for h in range(n_hops):
            idx = np.arange(n_ch) * n_hops + h
            rate_h = mu[:, idx]
            positive = np.where(rate_h > 0, rate_h, 1.0)
            out, queued, drop = physics.queue_step(
                backlog[:, idx], arrival, rate_h, dt, timeout)
            sojourn[..., h] = physics.mm1_sojourn(rate_h, arrival / positive)
            wait[..., h] = np.where(rate_h > 0, queued / positive, timeout)
            backlog[:, idx] = queued
            dropped += drop
            arrival = out
        sojourn = np.where(np.isfinite(sojourn), sojourn, timeout)
        samples = np.einsum('chs,bch->bcs', expo, sojourn) + \
            wait.sum(axis=2)[..., None] + links
        if finished.any():
            out = outage.reshape(n_forks, n_ch, n_hops)[..., None]
            samples = samples + np.sum(np.where(
                u_hit[None] < out / dt, u_wait[None] * out, 0.0), axis=2)
        ok = samples <= timeout
        late = 1.0 - ok.mean(axis=-1)
        answered_mean = np.sum(np.where(ok, samples, 0.0), axis=-1) / \
            np.maximum(ok.sum(axis=-1), 1)
        done = arrival * dt
        completed = done * (1.0 - late)
        lost = dropped + done * late
        cost += np.sum(completed * answered_mean + lost * timeout, axis=1)
        requests += np.sum(completed + lost, axis=1)
        if finished.any():
            host_of[m_fork[finished], m_vnf[finished]] = m_dst[finished]
        m_end = np.where(finished, -np.inf, m_end)
    # a request still queued at the end is charged the timeout: leaving
    # a queue behind is not free
    queued = backlog.sum(axis=1)
    return Outcome(cost=cost + queued * timeout, requests=requests + queued,
                   host_of=host_of, backlog=backlog)


class LookAheadOracle:
    """The ``oracle`` policy: the best move found by rollouts.

    :param scn: the scenario (its strategy budget and cooldown, and the
        migration model)
    :param look_ahead: seconds simulated ahead (default:
        look_ahead_seconds())
    """

    name = 'oracle'
    metrics = None

    def __init__(self, scn, look_ahead=None):
        self.scn = scn
        self.look_ahead = float(look_ahead or look_ahead_seconds(scn))
        self.calls = 0
        #: rollouts run and candidate sources pruned, over the run
        self.rollouts = 0
        self.sources_pruned = 0
        self.sources_searched = 0
        #: sources whose best move gained more than their bound
        self.bound_misses = 0

    def decide(self, tb):
        """[(vnf index, destination index)] chosen greedily."""
        self.calls += 1
        steps = int(round(self.look_ahead / tb.dt))
        seed = [tb.seed, 13, tb.k]
        moves = []
        for _ in range(int(self.scn['strategy']['max_migrations'])):
            best = self._best_next(tb, tuple(moves), steps, seed)
            if best is None:
                break
            moves.append(best)
        return moves

    def _candidates(self, tb, moves):
        return candidates(tb, self.scn, moves)

    def _trigger_steps(self, tb):
        return trigger_steps(self.scn, tb.dt)

    def _best_next(self, tb, moves, steps, seed):
        cands = self._candidates(tb, moves)
        if not cands:
            return None
        sources = sorted(cands)
        first = rollout(tb, [Fork(moves)] + [Fork(moves, s) for s in sources],
                        steps, seed)
        self.rollouts += len(sources) + 1
        base = first.cost[0]
        bounds = base - first.cost[1:]
        need = MIN_GAIN_SHARE * base
        best, best_gain = None, need
        order = np.argsort(-bounds, kind='stable')
        for rank, i in enumerate(order):
            if bounds[i] <= best_gain:
                self.sources_pruned += len(order) - rank
                break
            src_moves = cands[sources[i]]
            out = rollout(tb, [Fork(moves + (m,)) for m in src_moves],
                          steps, seed)
            self.rollouts += len(src_moves)
            self.sources_searched += 1
            j = int(np.argmin(out.cost))
            gain = base - out.cost[j]
            if gain > bounds[i] + 1e-9 * base:
                self.bound_misses += 1
            if gain > best_gain:
                best, best_gain = src_moves[j], gain
        return best


class ReactiveLookAheadOracle(LookAheadOracle):
    """The ``oracle-reactive`` policy: the look-ahead oracle held to the
    reactive strategy's rules.

    Sources are only the hosts in failure state by the strategy's trigger
    (mean CPU of the collectd samples over the trigger ``period`` at or
    above ``threshold``), at most one VNF per source, at most
    ``max_migrations``; every other rule (cooldown, room) is the oracle's.
    Every reactive policy (``proposed``, ``least-cpu``, ``trend``,
    ``seasonal``, ...) picks its moves from this set, so the gap between
    the two oracles says what moving only when triggered costs. It is NOT
    a bound of the reactive policies: the look-ahead is finite, and a move
    that pays over it cannot be undone until its destination fails in
    turn (the full oracle can move anything back at its next decision);
    on a short ``paper-drift`` stretch it lost to ``no-mig`` (328 against
    138 ms).
    """

    name = 'oracle-reactive'

    def __init__(self, scn, look_ahead=None):
        super().__init__(scn, look_ahead)
        #: decisions at which some host was in failure state
        self.triggered = 0

    def decide(self, tb):
        self.failing = failing_hosts(tb, self.scn)
        if not self.failing:
            self.calls += 1
            return []
        self.triggered += 1
        return super().decide(tb)

    def _best_next(self, tb, moves, steps, seed):
        used = {int(tb.host_of[v]) for v, _ in moves}
        allowed = self.failing - used
        self._restrict = allowed
        return super()._best_next(tb, moves, steps, seed)

    def _candidates(self, tb, moves):
        cands = candidates(tb, self.scn, moves)
        return {s: c for s, c in cands.items() if s in self._restrict}


class _ForecastView:
    """A testbed whose future exogenous load is a forecast: rollouts read
    ``bg`` and ``rate`` from it, everything else from the testbed.
    """

    def __init__(self, tb, bg, rate):
        self._tb, self.bg, self.rate = tb, bg, rate

    def __getattr__(self, name):
        return getattr(self._tb, name)

    def offered_cores(self, k):
        lam = np.repeat(self.rate[:, k], self._tb.n_hops)
        return np.minimum(lam * self._tb.cost, self._tb.vcpus)


class PersistenceLookAhead(LookAheadOracle):
    """The ``lookahead-persistence`` policy: the oracle's search with no
    foresight. Its rollouts hold each server's background load and each
    chain's request rate at their mean over the last trigger ``period``
    (persistence, the forecast with no model): a planner that knows the
    chains and the physics exactly but not the future. Between it and the
    oracle lies what knowing the future is worth; a policy that only reads
    the past is not bounded by it, but it shows how much of the oracle's
    gain the search itself brings without foresight.
    """

    name = 'lookahead-persistence'

    def decide(self, tb):
        per = self._trigger_steps(tb)
        past = slice(max(tb.k - per, 0), max(tb.k, 1))
        bg, rate = tb.bg.copy(), tb.rate.copy()
        bg[:, tb.k:] = tb.bg[:, past].mean(axis=1, keepdims=True)
        rate[:, tb.k:] = tb.rate[:, past].mean(axis=1, keepdims=True)
        return super().decide(_ForecastView(tb, bg, rate))


class SeasonalLookAhead(LookAheadOracle):
    """The ``lookahead-seasonal`` policy: the oracle's search on a
    seasonal forecast. Its rollouts replace the future exogenous load by
    what it was one cycle earlier: each server's background (what runs on
    it besides the VNFs: its load less its VNFs', which collectd measures
    both of) and each chain's request rate, held at their recent mean
    where no cycle shows. Cycles are estimated once, on the stretch
    before the run, as the cyclic model's are
    (:func:`prediction.cycles.estimate_host_cycles`: the first strong
    autocorrelation peak of the trigger-period mean, longer than the
    look-ahead, at most half the stretch). It reads only the past: a
    planner that knows the chains and the physics exactly and forecasts
    the load by the simplest rule that sees cycles. Not a bound and not
    the strategy: it measures what the search is worth with a forecast
    any operator could make.

    :param before: the Testbed of the stretch before the run (simulated
        without migrations: its background is its servers' load less
        their VNFs')
    """

    name = 'lookahead-seasonal'

    def __init__(self, scn, before, look_ahead=None):
        super().__init__(scn, look_ahead)
        self.before = before
        per = self._trigger_steps(before)
        steps = int(round(self.look_ahead / before.dt))
        # in steps (a step of 1): longer than the look-ahead, so that the
        # forecast reads only the past
        self.bg_cycles = cycles.estimate_host_cycles(
            before.bg, 1, per, steps).astype(int)
        self.rate_cycles = cycles.estimate_host_cycles(
            before.rate, 1, per, steps).astype(int)

    def decide(self, tb):
        per = self._trigger_steps(tb)
        steps = min(int(round(self.look_ahead / tb.dt)), tb.n_steps - tb.k)
        views = []
        for actual, before, cyc in ((tb.bg, self.before.bg, self.bg_cycles),
                                    (tb.rate, self.before.rate,
                                     self.rate_cycles)):
            # nothing of the true future: the rollouts read the forecast's
            # steps only, and a NaN past them would show if they did not
            view = np.full_like(actual, np.nan)
            view[:, :tb.k] = actual[:, :tb.k]
            if steps > 0:
                view[:, tb.k:tb.k + steps] = \
                    load_forecast.seasonal_forecast(np.concatenate(
                        [before, actual[:, :tb.k]], axis=1), cyc, steps, per)
            views.append(view)
        return super().decide(_ForecastView(tb, *views))


def failing_hosts(tb, scn):
    """Indexes of the hosts in failure state now by the strategy's
    trigger: the mean of the collectd samples of the last ``period``
    seconds at or above ``threshold``.
    """
    trig = scn['trigger']
    per = int(round(scn['metrics_interval'] / tb.dt))
    n = max(int(round(float(trig['period']) / scn['metrics_interval'])), 1)
    _, host, _ = tb.metric_samples(max(tb.k - n * per, 0))
    if not host or host['cpu'].shape[1] == 0:
        return set()
    mean = host['cpu'][:, -n:].mean(axis=1)
    return set(np.flatnonzero(mean >= float(trig['threshold'])).tolist())


def candidates(tb, scn, planned=()):
    """``{source host: [(vnf, destination)]}``: every move the strategy's
    rules allow now, from any host, after the moves ``planned`` this
    decision.

    A VNF is movable when it is not migrating, was not moved in this
    decision, and its host did not receive a VNF within
    ``received_cooldown`` (the strategy's rules, read from the same
    migration history). A destination is any other host with a free slot
    for it (vCPU, RAM and disk, counting the VNFs there, the claims of the
    migrations under way to it and of the moves planned) but the host the
    VNF left within ``cooldown`` seconds.
    """
    left, recent_dests = migrations.recent(
        tb.migration_history, tb.now(), float(scn['strategy']['cooldown']),
        float(scn['strategy'].get('received_cooldown', 0)))
    srv, ch = scn['servers'], scn['chains']
    slots = min(srv['cores'] // ch['vcpus'],
                srv['memory_mb'] // ch['memory_mb'],
                srv['disk_gb'] // ch['disk_gb'] if ch['disk_gb'] else
                tb.n_vnfs)
    used = np.bincount(tb.host_of, minlength=tb.n_servers) + np.bincount(
        [m.dst for m in tb.active] + [d for _, d in planned],
        minlength=tb.n_servers)
    moved = {v for v, _ in planned}
    out = {}
    for vnf in range(tb.n_vnfs):
        src = int(tb.host_of[vnf])
        if vnf in moved or tb.migrating(vnf) or \
                cluster.host_name(src) in recent_dests:
            continue
        back = left.get(cluster.vnf_uuid(vnf), (None, None))[1]
        for dst in range(tb.n_servers):
            if dst != src and used[dst] < slots and \
                    cluster.host_name(dst) != back:
                out.setdefault(src, []).append((vnf, dst))
    return out
