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

"""Random clusters for the strategy's safety invariants.

Shared by the property-based test
(tests/unit/strategies/test_safety_properties.py, hypothesis drives the
random choices and shrinks them) and ``bench/safety_fuzz.py`` (tens of
thousands of seeded clusters). Clusters are built with
:mod:`watcher_failpredict.testbed.audit_cluster`'s ``Cluster`` (a real
Watcher ModelRoot, metrics in the project's InMemoryDataSource, the
transparent risk = mean CPU / 100 model), and include the degenerate cases
issue 14 found: nodes of 0 vCPUs or 0 MB, NaN gaps in the trigger period,
stale hosts, garbage readings (negative, far above 100 %, infinite),
disabled and down services, locked, excluded and non-active instances,
recent migrations.

:func:`run` executes one audit and returns an :class:`Outcome`: whether it
crashed (any exception but the strategy's own FailurePredictionError, which
fails an audit cleanly), and every breach of the invariants below found in
its plan.
"""

import collections
import dataclasses

import numpy as np

from watcher_failpredict.strategies import errors
from watcher_failpredict.strategies import migrations
from watcher_failpredict.strategies import parameters
from watcher_failpredict.strategies import placement
from watcher_failpredict.testbed.audit_cluster import Cluster
from watcher_failpredict.testbed.audit_cluster import NOW

#: Every invariant :func:`breaches` checks, in report order.
INVARIANTS = (
    'over_committed_destination',      # free vCPU/RAM/disk < 0 after plan
    'failing_destination',             # >= threshold in the working windows
    'disabled_or_down_destination',
    'unevaluable_destination',         # stale, no metrics, 0 capacity...
    'garbage_destination',             # reports readings out of range
    'garbage_instance_moved',          # a VNF reporting out-of-range load
    'same_host_destination',
    'unmovable_instance',              # not ACTIVE, locked or excluded
    'max_migrations_exceeded',
    'instance_returned_in_cooldown',   # to the host it left within it
    'source_in_cooldown',              # received a VNF within
                                       # received_cooldown
    'two_moves_from_one_source',
    'instance_moved_twice',
)

GARBAGE_VALUES = (150.0, 1e6, -20.0, -1e6, np.inf)
#: metrics_max_age is 120 s: older latest samples make a host stale
STALE_AGES = (200, 1000)


@dataclasses.dataclass
class Scenario:
    cluster: Cluster
    params: dict
    garbage_hosts: set
    zero_capacity_hosts: set
    gappy_hosts: set
    stale_hosts: set
    garbage_instances: set = dataclasses.field(default_factory=set)

    def cases(self):
        """The degenerate cases this cluster holds, by name."""
        return {name for name, held in (
            ('zero-capacity node', self.zero_capacity_hosts),
            ('NaN gaps', self.gappy_hosts),
            ('garbage readings', self.garbage_hosts),
            ('garbage VNF readings', self.garbage_instances),
            ('stale host', self.stale_hosts),
            ('proactive mode',
             self.params.get('mode') == parameters.PROACTIVE),
        ) if held}


@dataclasses.dataclass
class Outcome:
    scenario: Scenario
    crash: str = None             # 'TypeName: message' of an unexpected error
    failed: str = None            # a FailurePredictionError's message
    moves: list = dataclasses.field(default_factory=list)
    breaches: collections.Counter = dataclasses.field(
        default_factory=collections.Counter)


def _chance(rng, p):
    return rng.random() < p


def _series(rng, noise, level, n, gaps, garbage):
    """A CPU series: a flat, ramping or square level with noise, NaN gaps
    (a lost UDP sample each step with probability ``gaps``) and, when
    ``garbage``, a few readings replaced by physically impossible values.
    """
    shape = rng.choice(('flat', 'ramp', 'square'))
    if shape == 'flat':
        values = np.full(n, level)
    elif shape == 'ramp':
        values = np.linspace(rng.uniform(0, 100), level, n)
    else:
        values = np.where(np.arange(n) % rng.randint(2, 20) < 3, 100.0,
                          level)
    values = np.clip(values + noise.normal(0, rng.uniform(0, 10), n), 0, 100)
    if gaps:
        values[noise.random(n) < gaps] = np.nan
    if garbage:
        hits = noise.random(n) < rng.uniform(0.05, 1.0)
        # one at least in the last minute, so every audit's window holds
        # it and a move onto (or of) it is a breach, not a matter of luck
        hits[n - 1 - rng.randint(0, 5)] = True
        values[hits] = rng.choice(GARBAGE_VALUES)
    return values


def random_scenario(rng):
    """A random cluster and audit parameters; ``rng`` is a random.Random
    (hypothesis' ``randoms()`` or a seeded one).
    """
    noise = np.random.default_rng(rng.getrandbits(32))
    c = Cluster()
    n = Cluster.n
    params = {
        'threshold': rng.choice((50.0, 70.0, 80.0, 90.0, 95.0,
                                 round(rng.uniform(20, 100), 1))),
        'period': rng.choice((60, 120, 300, 600)),
        'max_migrations': rng.randint(1, 4),
        'cooldown': rng.choice((0, 300, 600)),
        'received_cooldown': rng.choice((0, 0, 300, 600)),
        'mode': rng.choice((parameters.REACTIVE, parameters.REACTIVE,
                            parameters.PROACTIVE)),
        'risk_threshold': rng.choice((0.3, 0.5, 0.9)),
        'cost_weight': rng.choice((0.0, 0.1, 1.0, 10.0)),
        'move_rule': rng.choice(parameters.MOVE_RULES),
    }
    sc = Scenario(c, params, set(), set(), set(), set())
    hosts = [f'h{i}' for i in range(rng.randint(2, 8))]
    for name in hosts:
        vcpus = rng.choice((4, 12, 12, 48))
        memory = rng.choice((8192, 24576, 24576, 262144))
        if _chance(rng, 0.08):
            vcpus = 0
            sc.zero_capacity_hosts.add(name)
        if _chance(rng, 0.05):
            memory = 0
            sc.zero_capacity_hosts.add(name)
        gaps = rng.uniform(0.1, 0.9) if _chance(rng, 0.3) else 0.0
        garbage = _chance(rng, 0.1)
        age = rng.choice(STALE_AGES) if _chance(rng, 0.1) else 0
        if gaps:
            sc.gappy_hosts.add(name)
        if garbage:
            sc.garbage_hosts.add(name)
        if age:
            sc.stale_hosts.add(name)
        c.host(name, _series(rng, noise, rng.uniform(0, 100), n, gaps,
                             garbage),
               status='enabled' if _chance(rng, 0.9) else 'disabled',
               state='up' if _chance(rng, 0.9) else 'down',
               vcpus=vcpus, memory=memory,
               disk=rng.choice((100, 500)), metrics=_chance(rng, 0.93),
               age=age)
    for h, name in enumerate(hosts):
        for i in range(rng.randint(0, 5)):
            uuid = f'vm-{h}-{i}'
            garbage = _chance(rng, 0.05)
            if garbage:
                sc.garbage_instances.add(uuid)
            c.instance(
                uuid, name,
                cpu=_series(rng, noise, rng.uniform(0, 100), n,
                            rng.uniform(0.1, 0.9) if _chance(rng, 0.2)
                            else 0.0, garbage),
                vcpus=rng.choice((1, 2, 4, 8)),
                memory=rng.choice((512, 1024, 2048, 8192)),
                disk=rng.choice((1, 10, 40)), metrics=_chance(rng, 0.9),
                state='active' if _chance(rng, 0.85) else rng.choice(
                    ('stopped', 'paused', 'error', 'building')),
                locked=_chance(rng, 0.1), watcher_exclude=_chance(rng, 0.1))
            if _chance(rng, 0.1):
                c.history.append(migrations.Migration(
                    uuid, rng.choice(hosts), name,
                    NOW - rng.uniform(0, 1200)))
    if _chance(rng, 0.2):
        c.history.append(migrations.Migration('gone', rng.choice(hosts),
                                              rng.choice(hosts),
                                              NOW - rng.uniform(0, 1200)))
    return sc


def _before(model):
    """What the invariants judge a plan against: the cluster before it."""
    nodes = {n.hostname: (n.status, n.state) for n in
             model.get_all_compute_nodes().values()}
    insts = {i.uuid: (i.state, i.locked, i.watcher_exclude)
             for i in model.get_all_instances().values()}
    return nodes, insts


def breaches(sc, strategy, moves, nodes_before, insts_before):
    """Every invariant the plan ``moves`` [(uuid, source, destination)]
    breaks, counted.
    """
    found = collections.Counter()
    params, model = sc.params, sc.cluster.model
    if len(moves) > params['max_migrations']:
        found['max_migrations_exceeded'] += 1
    # derived here, not by strategies.migrations.recent, so that the
    # checker does not check the strategy's rule against itself
    left = {}             # the host each VNF left last, within cooldown
    for m in sorted(sc.cluster.history, key=lambda m: m.at):
        if NOW - m.at < params['cooldown']:
            left[m.instance_uuid] = m.source_node
    cooling_hosts = {m.destination_node for m in sc.cluster.history
                     if NOW - m.at < params.get('received_cooldown', 0)}
    usable = set(strategy.windows.names) if strategy.windows else set()
    sources = collections.Counter(src for _, src, _ in moves)
    found['two_moves_from_one_source'] += sum(
        1 for count in sources.values() if count > 1)
    moved = collections.Counter(uuid for uuid, _, _ in moves)
    found['instance_moved_twice'] += sum(
        1 for count in moved.values() if count > 1)
    for uuid, src, dst in moves:
        state, locked, excluded = insts_before[uuid]
        if state != 'active' or locked or excluded:
            found['unmovable_instance'] += 1
        if left.get(uuid) == dst:
            found['instance_returned_in_cooldown'] += 1
        if src in cooling_hosts:
            found['source_in_cooldown'] += 1
        if src == dst:
            found['same_host_destination'] += 1
        if nodes_before[dst] != ('enabled', 'up'):
            found['disabled_or_down_destination'] += 1
        if dst not in usable or dst in strategy.skipped:
            found['unevaluable_destination'] += 1
        if dst in sc.garbage_hosts:
            found['garbage_destination'] += 1
        if uuid in sc.garbage_instances:
            found['garbage_instance_moved'] += 1
    for dst in {d for _, _, d in moves}:
        free = model.get_node_free_resources(model.get_node_by_name(dst))
        if min(free['vcpu'], free['memory'], free['disk']) < 0:
            found['over_committed_destination'] += 1
        if dst in usable and placement.is_failing(
                placement.period_mean(strategy.windows.series('cpu', dst),
                                      strategy.period_steps),
                params['threshold']):
            found['failing_destination'] += 1
    return found


def run(sc):
    """One audit of ``sc``: its Outcome."""
    strategy = sc.cluster.strategy(**sc.params)
    nodes_before, insts_before = _before(sc.cluster.model)
    out = Outcome(sc)
    try:
        solution = strategy.execute()
    except errors.FailurePredictionError as exc:
        out.failed = str(exc)
        return out
    except Exception as exc:  # the fuzz counts every other error as a crash
        out.crash = f'{type(exc).__name__}: {exc}'
        return out
    out.moves = [(a['input_parameters']['resource_id'],
                  a['input_parameters']['source_node'],
                  a['input_parameters']['destination_node'])
                 for a in solution.actions]
    out.breaches = breaches(sc, strategy, out.moves, nodes_before,
                            insts_before)
    return out
