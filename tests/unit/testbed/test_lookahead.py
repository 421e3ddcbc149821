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

"""The look-ahead oracle: forks, candidates, the bound, and that no
policy beats it.
"""

import copy

import numpy as np
import pytest

from watcher_failpredict.testbed import cluster
from watcher_failpredict.testbed import lookahead
from watcher_failpredict.testbed import policies
from watcher_failpredict.testbed import runner
from watcher_failpredict.testbed import scenario
from watcher_failpredict.tracesets import catalog

from tests.unit.testbed import test_run


@pytest.fixture(scope='module')
def short():
    return scenario.validate(test_run.SHORT)


def busy_testbed(scn, k=150):
    """SHORT's test stretch at step ``k``, one migration under way."""
    tb = cluster.Testbed(scn, 3)
    tb.run_until(k - 5)
    assert tb.start_migration(5, int(tb.host_of[5] + 1) % tb.n_servers)
    tb.run_until(k)
    return tb


def test_look_ahead_covers_the_longest_migration_and_two_cooldowns():
    paper = scenario.load('paper')
    longest, _ = lookahead.physics.migration_duration(1024, 1.0)
    assert 50 < longest < 52
    # 51 s + 2 x 600 s cooldown + 2 s timeout, up to a whole minute
    assert lookahead.look_ahead_seconds(paper) == 1260.0


def test_a_fork_replays_the_testbed_exactly(short):
    tb = busy_testbed(short)
    before = (tb.k, tb.host_of.copy(), tb.backlog.copy())
    out = lookahead.rollout(tb, [lookahead.Fork(), lookahead.Fork(
        ((9, 0),))], 100, [1])
    # the testbed itself is untouched
    assert (tb.k, list(tb.host_of)) == (before[0], list(before[1]))
    np.testing.assert_array_equal(tb.backlog, before[2])
    for fork, moves in ((0, ()), (1, ((9, 0),))):
        ref = copy.deepcopy(tb)
        for vnf, dst in moves:
            ref.start_migration(vnf, dst)
        ref.run_until(tb.k + 100)
        # placement (the migrations under way and the fork's own ended)
        # and every hop's queue follow the testbed's physics exactly
        np.testing.assert_array_equal(out.host_of[fork], ref.host_of)
        np.testing.assert_allclose(out.backlog[fork], ref.backlog,
                                   rtol=1e-12, atol=1e-12)
    assert out.host_of[1][9] == 0 and out.host_of[0][9] != 0


def test_forks_share_their_random_draws(short):
    tb = busy_testbed(short)
    out = lookahead.rollout(tb, [lookahead.Fork(((9, 0),)),
                                 lookahead.Fork(((9, 0),)),
                                 lookahead.Fork()], 60, [4])
    # the same fork twice: the same cost to the last bit; requests are
    # the exogenous arrivals whatever the move
    assert out.cost[0] == out.cost[1]
    assert out.requests[0] == pytest.approx(out.requests[2], rel=1e-9)
    again = lookahead.rollout(tb, [lookahead.Fork()], 60, [4])
    assert again.cost[0] == out.cost[2]


def test_relaxation_bounds_every_move_off_its_source(short):
    tb = busy_testbed(short)
    cands = lookahead.candidates(tb, short)
    sources = sorted(cands)
    steps = 132
    first = lookahead.rollout(tb, [lookahead.Fork()] + [
        lookahead.Fork((), s) for s in sources], steps, [2])
    base = first.cost[0]
    bounds = base - first.cost[1:]
    assert (bounds >= -1e-9 * base).all()
    assert bounds.max() > 0           # some host is overloaded here
    for s, bound in zip(sources, bounds):
        out = lookahead.rollout(tb, [lookahead.Fork((m,))
                                     for m in cands[s]], steps, [2])
        assert (base - out.cost).max() <= bound + 1e-9 * base, s


def test_candidates_follow_the_strategys_cooldown_and_room(short):
    tb = busy_testbed(short)
    m = tb.active[0]
    cands = lookahead.candidates(tb, short)
    moving = [v for moves in cands.values() for v, _ in moves]
    assert m.vnf not in moving                    # migrating
    # after the move: for the cooldown, from the migration's end, the VNF
    # may move on but not back; its destination is a source at once
    # (received_cooldown 0), or after received_cooldown
    tb.run_until(int(m.end // tb.dt) + 2)
    cands = lookahead.candidates(tb, short)
    assert m.dst in cands
    onward = {d for v, d in cands[m.dst] if v == m.vnf}
    assert onward and m.src not in onward
    waits = copy.deepcopy(short)
    waits['strategy']['received_cooldown'] = short['strategy']['cooldown']
    assert m.dst not in lookahead.candidates(tb, waits)
    tb.run_until(tb.k + int(short['strategy']['cooldown'] / tb.dt) + 1)
    cands = lookahead.candidates(tb, short)
    assert m.dst in lookahead.candidates(tb, waits)
    assert m.src in {d for v, d in cands[m.dst] if v == m.vnf}
    # a planned move is not planned twice, and a full host takes nothing
    full = copy.deepcopy(short)
    full['servers']['cores'] = 3          # 3 slots of 1 vCPU
    tb = cluster.Testbed(full, 3)
    counts = np.bincount(tb.host_of, minlength=tb.n_servers)
    cands = lookahead.candidates(tb, full, ((0, 1),))
    for moves in cands.values():
        assert all(v != 0 for v, _ in moves)
        assert all(counts[d] + (d == 1) < 3 for _, d in moves)


def test_oracle_keeps_the_budget_and_counts_its_work(short):
    tb = busy_testbed(short)
    oracle = lookahead.LookAheadOracle(short)
    moves = oracle.decide(tb)
    assert len(moves) <= short['strategy']['max_migrations']
    assert len({v for v, _ in moves}) == len(moves)
    assert oracle.calls == 1 and oracle.rollouts > 0
    assert oracle.bound_misses == 0
    assert oracle.sources_searched + oracle.sources_pruned > 0


def test_reactive_oracle_moves_one_vnf_off_each_failing_host_only(short):
    tb = cluster.Testbed(short, 3)
    oracle = lookahead.ReactiveLookAheadOracle(short)
    seen_quiet = seen_failing = False
    for k in range(60, tb.n_steps - 1, 10):
        tb.run_until(k)
        failing = lookahead.failing_hosts(tb, short)
        # the trigger by hand: the mean of the last period's samples
        _, host, _ = tb.metric_samples(0)
        n = int(short['trigger']['period'] / short['metrics_interval'])
        by_hand = set(np.flatnonzero(host['cpu'][:, -n:].mean(axis=1)
                                     >= short['trigger']['threshold']))
        assert failing == by_hand
        before = oracle.sources_searched + oracle.sources_pruned
        moves = oracle.decide(tb)
        sources = [int(tb.host_of[v]) for v, _ in moves]
        assert set(sources) <= failing
        assert len(sources) == len(set(sources))
        # the only sources it weighs are the failing hosts
        considered = oracle.sources_searched + oracle.sources_pruned - before
        assert considered <= len(failing) * short['strategy'][
            'max_migrations']
        seen_quiet |= not failing
        seen_failing |= considered > 0
    assert seen_quiet and seen_failing
    assert oracle.triggered < oracle.calls


def exact_cycles(drift=None):
    """SHORT with no noise and a 120 s cooldown: every load repeats
    exactly, each cycle longer than the look-ahead (the test stretch's
    cycles drifted by ``drift``, when given).
    """
    scn = copy.deepcopy(test_run.SHORT)
    if drift:
        scn['drift'] = drift
    scn['strategy'] = {'cooldown': 120}
    for bg in scn['servers']['background']:
        bg['noise'] = 0.0
    # a rate cycle the hour before the run shows twice (the estimate looks
    # at most half the history back)
    scn['chains']['rate'].update(noise=0.0, period=900)
    return scenario.validate(scn)


def test_seasonal_lookahead_is_the_oracle_when_the_load_repeats_exactly():
    scn = exact_cycles()
    before = runner.simulate_history(scn, 3)
    seasonal = lookahead.SeasonalLookAhead(scn, before)
    # every server's cycle found within a step (the autocorrelation of a
    # finite stretch peaks a step off for the sharp patterns), the chains'
    # rate's too; with the exact cycles the forecast is the future itself
    periods = np.array([bg['period'] for bg in scn['servers'][
        'background']]) / before.dt
    assert np.abs(seasonal.bg_cycles - periods).max() <= 1
    assert np.abs(seasonal.rate_cycles - 900 / before.dt).max() <= 1
    seasonal.bg_cycles = periods.astype(int)
    seasonal.rate_cycles[:] = 900 / before.dt
    oracle = lookahead.LookAheadOracle(scn)
    tb = cluster.Testbed(scn, 3)
    decided = 0
    for k in range(60, tb.n_steps - 1, 60):
        tb.run_until(k)
        moves = oracle.decide(tb)
        assert seasonal.decide(tb) == moves, k
        decided += bool(moves)
        for vnf, dst in moves:
            tb.start_migration(vnf, dst)
    assert decided >= 2


def test_seasonal_lookahead_reads_only_the_past():
    scn = exact_cycles()
    seasonal = lookahead.SeasonalLookAhead(
        scn, runner.simulate_history(scn, 3))
    tb = busy_testbed(scn, 240)
    moves = seasonal.decide(tb)
    assert moves
    # another future: the oracle sees it, the seasonal search cannot
    tb.bg[:, tb.k:] = tb.bg[:, tb.k:][::-1]
    assert lookahead.LookAheadOracle(scn).decide(tb) != moves
    assert seasonal.decide(tb) == moves


#: The noise the test allows. Two runs with the same moves differ only
#: in their latency draws (one stream per seed, and a switch-over
#: consumes extra draws, so other moves shift the stream). Measured on
#: these stretches (paper, azure, paper-drift; no-mig and least-cpu, 5
#: latency streams each): the headline's spread (max - min over mean) is
#: 0.07-1.4 %. A policy is beaten when the oracle's headline is above it
#: by more than 2 %.
NOISE = 0.02

HAVE_ALIBABA = not catalog.missing_files(catalog.get('alibaba'))


def short_version(name):
    """A built-in scenario cut to SHORT-like stretches (1 h to train on,
    30 min to run), everything else as shipped.
    """
    scn = scenario.load(name)
    scn['train_duration'], scn['test_duration'] = 3600.0, 1800.0
    return scn


@pytest.mark.parametrize('name', [
    pytest.param(n, marks=pytest.mark.skipif(
        n == 'alibaba' and not HAVE_ALIBABA,
        reason='research-only Alibaba trace absent'))
    for n in scenario.builtin_names()])
def test_no_policy_beats_the_oracle(name):
    res = runner.evaluate(short_version(name), list(policies.POLICIES))
    (work,) = res['per_seed']['oracle']
    assert work['rollouts'] >= work['audits'] > 0
    assert 'bound_misses' not in res['per_seed']['least-cpu'][0]
    agg = res['aggregate']
    oracle = agg['oracle']['mean_rt_all']['mean']
    for policy, figures in agg.items():
        assert oracle <= figures['mean_rt_all']['mean'] * (1 + NOISE), \
            policy
    # held to the reactive rules the search is no bound (it cannot undo a
    # move until the host fails; see ReactiveLookAheadOracle), but it
    # moves only when triggered, within the budget
    (held,) = res['per_seed']['oracle-reactive']
    assert held['migrations'] <= held['triggered'] * int(
        short_version(name)['strategy']['max_migrations'])
