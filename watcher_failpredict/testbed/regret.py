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

"""One-step regret: how much of the best move each policy takes, on the
same states.

The end-to-end table says how far a policy's run lands from the
oracle's, but not why: a run is a chain of decisions, each taken in a
state the earlier ones made. This measure holds the states fixed. One
*driver* policy runs the test (or validation) stretch; at every decision
at which some host is in failure state by the trigger, every *shadow*
policy is asked what it would do in that same state (its moves are not
carried out), and each answer is scored by the look-ahead oracle's
rollouts on the true future exogenous load (``lookahead.rollout``, common
random numbers, 1260 s on ``paper``) against:

* ``base``: no move;
* ``best``: the best single move off a failing host (each movable VNF of
  each failing host to each host with room), or no move if none gains:
  what the reactive oracle would take first.

Per policy it sums ``available`` (base - best, what the best single move
gains) and ``captured`` (base - the cost of the policy's moves), and
splits the shortfall ``available - captured`` by where it arose:

* ``not_moved``: the policy planned nothing;
* ``second_move``: it planned two moves off failing hosts, and taking
  the other one together with the better of the two cost this much more
  than that one alone (negative when the pair pays more);
* ``destination``: its (better) move costs more than the same VNF's best
  destination;
* ``needless``: the rest, when no single move gains anything (moving at
  all was the mistake);
* ``choice``: the rest otherwise (another VNF than the best one);
* ``other``: a move that is not off a failing host (proactive mode, or a
  second VNF off the same host): the whole shortfall; it can capture more
  than ``available`` (negative shortfall).

Every figure is request-seconds over the look-ahead, summed over the
triggered decisions.
"""

import collections

import numpy as np

from watcher_failpredict.testbed import cluster
from watcher_failpredict.testbed import lookahead
from watcher_failpredict.testbed import policies as pol
from watcher_failpredict.testbed import runner

PARTS = ('not_moved', 'needless', 'choice', 'destination', 'second_move',
         'other')


def score_decision(tb, scn, picks, seed):
    """Score each policy's moves in the testbed's state now.

    :param picks: ``{policy name: [(vnf, destination)]}``
    :returns: None when no host is in failure state, else ``{'base': ...,
        'available': ..., name: {'captured': ..., part: ...}}``
    """
    failing = lookahead.failing_hosts(tb, scn)
    if not failing:
        return None
    cands = lookahead.candidates(tb, scn)
    singles = [m for s in sorted(failing) for m in cands.get(s, [])]
    names = sorted(picks)
    forks = [lookahead.Fork(())] + [lookahead.Fork((m,)) for m in singles]
    forks += [lookahead.Fork(tuple(picks[n])) for n in names]
    steps = int(round(lookahead.look_ahead_seconds(scn) / tb.dt))
    cost = lookahead.rollout(tb, forks, steps, [seed, 13, tb.k]).cost
    base = float(cost[0])
    single_cost = dict(zip(singles, cost[1:1 + len(singles)]))
    best = min([base] + list(single_cost.values()))
    out = {'base': base, 'available': base - best}
    for i, name in enumerate(names):
        mine = float(cost[1 + len(singles) + i])
        moves = [tuple(m) for m in picks[name]]
        row = dict.fromkeys(PARTS, 0.0)
        row['captured'] = base - mine
        short = out['available'] - row['captured']
        if not moves:
            row['not_moved'] = short
        elif all(m in single_cost for m in moves):
            # the best of the policy's moves alone, then what the others
            # added to it (their cost when taken together with it)
            lead = min(moves, key=lambda m: single_cost[m])
            alone = float(single_cost[lead])
            row['second_move'] = mine - alone
            same_vnf = min(c for m, c in single_cost.items()
                           if m[0] == lead[0])
            row['destination'] = alone - float(same_vnf)
            rest = short - row['second_move'] - row['destination']
            row['needless' if out['available'] <= 0 else 'choice'] = rest
        else:
            row['other'] = short
        row['moves'] = len(moves)
        out[name] = row
    return out


def run(scn, driver, shadows, seed, stretch='validation', progress=None):
    """Drive one seed with ``driver`` and score every shadow (the driver
    included) at each triggered decision.

    :returns: ``{'decisions': n, 'base': ..., 'available': ..., name:
        {'captured': ..., part: ..., 'moves': ...}}`` summed
    """
    names = list(dict.fromkeys([driver] + list(shadows)))
    history = bundle = before = None
    if any(n in pol.TRAINED + pol.NEEDS_HISTORY for n in names):
        # what runner.run_seed gives the policies: the stretch before
        before = runner.simulate_history(scn, seed,
                                         runner.TRAINED_ON[stretch])
        history = before.rec_cpu[:, :before.k]
        if any(n in pol.TRAINED for n in names):
            bundle, _ = runner.train_model(scn, seed, history=before)
    tb = cluster.Testbed(scn, seed, stretch)
    made = {n: pol.make_policy(n, scn, tb, seed, bundle, history, before)
            for n in names}
    every = int(round(scn['decision_interval'] / tb.dt))
    first = int(np.ceil(max(scn['model']['window'],
                            scn['trigger']['period']) / tb.dt))
    total = collections.defaultdict(float)
    rows = {n: collections.defaultdict(float) for n in names}
    while tb.k < tb.n_steps:
        tb.run_until(tb.k + every)
        if first <= tb.k < tb.n_steps:
            picks = {n: made[n].decide(tb) for n in names}
            scored = score_decision(tb, scn, picks, seed)
            if scored is not None:
                total['decisions'] += 1
                total['base'] += scored['base']
                total['available'] += scored['available']
                for n in names:
                    for key, value in scored[n].items():
                        rows[n][key] += value
            for vnf, dst in picks[driver]:
                tb.start_migration(vnf, dst)
        if progress is not None:
            progress(tb.k, tb.n_steps)
    out = dict(total)
    out.update({n: dict(r) for n, r in rows.items()})
    return out


def combine(results):
    """Sum run() results over seeds."""
    out = collections.defaultdict(float)
    per = collections.defaultdict(lambda: collections.defaultdict(float))
    for res in results:
        for key, value in res.items():
            if isinstance(value, dict):
                for k, v in value.items():
                    per[key][k] += v
            else:
                out[key] += value
    out = dict(out)
    out.update({n: dict(r) for n, r in per.items()})
    return out
