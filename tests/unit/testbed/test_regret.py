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

"""One-step regret on common states (testbed/regret.py)."""

import pytest

from watcher_failpredict.testbed import cluster
from watcher_failpredict.testbed import lookahead
from watcher_failpredict.testbed import regret
from watcher_failpredict.testbed import scenario

from tests.unit.testbed import test_lookahead
from tests.unit.testbed import test_run


@pytest.fixture(scope='module')
def short():
    return scenario.validate(test_run.SHORT)


def state_at(scn, triggered=True):
    """SHORT's test stretch at the first decision with (or without) a
    failing host.
    """
    tb = cluster.Testbed(scn, 3)
    every = int(round(scn['decision_interval'] / tb.dt))
    while tb.k < tb.n_steps:
        tb.run_until(tb.k + every)
        if bool(lookahead.failing_hosts(tb, scn)) == triggered:
            return tb
    pytest.fail(f'SHORT never has triggered={triggered}')


def test_the_parts_add_up_and_each_lands_where_it_belongs(short):
    tb = state_at(short)
    failing = sorted(lookahead.failing_hosts(tb, short))
    cands = lookahead.candidates(tb, short)
    src = failing[0]
    (vnf, dst), *rest = cands[src]
    other_dst = next(d for v, d in rest if v == vnf)
    calm = next(s for s in cands if s not in failing)
    picks = {'none': [], 'one': [(vnf, dst)], 'other_dest': [
        (vnf, other_dst)], 'off_calm': [cands[calm][0]]}
    out = regret.score_decision(tb, short, picks, 7)
    assert out['available'] >= 0
    # no move: the whole of what was available is lost by not moving
    assert out['none']['captured'] == 0
    assert out['none']['not_moved'] == pytest.approx(out['available'])
    for name in ('one', 'other_dest'):
        row = out[name]
        assert row['second_move'] == 0
        assert row['destination'] >= 0
        assert row['captured'] + row['choice'] + row['needless'] + \
            row['destination'] == pytest.approx(out['available'])
        # the rest is "needless" exactly when no single move gains
        assert (row['needless'] if out['available'] == 0 else
                row['choice']) == row['choice'] + row['needless']
        assert row['moves'] == 1
    # a move off a host that is not failing is "other"
    assert out['off_calm']['other'] == pytest.approx(
        out['available'] - out['off_calm']['captured'])
    assert out['off_calm']['destination'] == 0
    # the same VNF to two hosts: at most one of them is its best host
    assert min(out['one']['destination'],
               out['other_dest']['destination']) == pytest.approx(0) or \
        out['one']['captured'] != out['other_dest']['captured']


def test_the_best_single_move_loses_nothing(short):
    tb = state_at(short)
    failing = lookahead.failing_hosts(tb, short)
    cands = lookahead.candidates(tb, short)
    singles = [m for s in sorted(failing) for m in cands.get(s, [])]
    steps = int(round(lookahead.look_ahead_seconds(short) / tb.dt))
    cost = lookahead.rollout(tb, [lookahead.Fork((m,)) for m in singles],
                             steps, [7, 13, tb.k]).cost
    best = singles[int(cost.argmin())]
    out = regret.score_decision(tb, short, {'best': [best]}, 7)
    row = out['best']
    if out['available'] > 0:
        assert row['captured'] == pytest.approx(out['available'])
        assert row['destination'] == pytest.approx(0)
        assert row['choice'] == pytest.approx(0, abs=1e-6 * out['base'])


def test_a_calm_state_is_not_scored(short):
    tb = state_at(short, triggered=False)
    assert not lookahead.failing_hosts(tb, short)
    assert regret.score_decision(tb, short, {'x': []}, 7) is None


def test_a_driven_run_sums_every_shadow_over_the_same_decisions():
    # paper cut short (SHORT's overloads are never worth a move: there
    # the best single move gains nothing at any decision)
    paper = test_lookahead.short_version('paper')
    res = regret.run(paper, 'oracle-reactive', ['no-mig', 'least-cpu'], 1,
                     stretch='test')
    assert res['decisions'] > 0 and res['available'] > 0
    # no-mig never moves: it loses exactly what was available
    assert res['no-mig']['captured'] == 0
    assert res['no-mig']['not_moved'] == pytest.approx(res['available'])
    # the driver takes the best single move first, and a second only if
    # it adds: it captures at least what was available, up to rounding
    oracle = res['oracle-reactive']
    assert oracle['captured'] >= res['available'] * (1 - 1e-6)
    lc = res['least-cpu']
    # two failing hosts at once on this stretch: least-cpu relieves both,
    # and the second move is scored apart from the first
    assert lc['moves'] > res['decisions']
    assert lc['second_move'] != 0
    assert sum(lc[p] for p in regret.PARTS) + lc['captured'] == \
        pytest.approx(res['available'])
    both = regret.combine([res, res])
    assert both['decisions'] == 2 * res['decisions']
    assert both['least-cpu']['moves'] == 2 * lc['moves']
