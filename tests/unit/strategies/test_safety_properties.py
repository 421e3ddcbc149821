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

"""The strategy's safety invariants over random clusters (hypothesis).

The clusters (watcher_failpredict/testbed/random_clusters.py) include nodes
of 0 vCPUs or 0 MB, NaN gaps, stale hosts and garbage readings; whatever
they hold, an audit either fails cleanly (FailurePredictionError) or plans
only safe moves. ``bench/safety_fuzz.py`` runs the same check over >=
20,000 seeded clusters and prints the counts.
"""

import collections
import random

from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st

from watcher_failpredict.testbed import random_clusters as rc


EXAMPLES = 300


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(rng=st.randoms(use_true_random=False))
def test_no_crash_and_no_unsafe_plan(rng):
    out = rc.run(rc.random_scenario(rng))
    assert out.crash is None
    assert +out.breaches == collections.Counter(), out.moves


def test_random_clusters_hold_the_degenerate_cases():
    """The property above is only as good as its clusters: over 200 seeds
    they hold every degenerate case and still plan moves.
    """
    seen = collections.Counter()
    for seed in range(200):
        sc = rc.random_scenario(random.Random(seed))
        out = rc.run(sc)
        seen.update(sc.cases())
        seen['planned'] += bool(out.moves)
        seen['failed'] += out.failed is not None
    for case in ('zero-capacity node', 'NaN gaps', 'garbage readings',
                 'garbage VNF readings', 'stale host', 'proactive mode',
                 'planned'):
        assert seen[case] >= 20, seen
    assert seen['failed'] >= 1, seen


def test_breaches_finds_each_unsafe_move():
    """The checker itself: a hand-made plan breaking every invariant."""
    c = rc.Cluster()
    params = dict(threshold=90.0, max_migrations=1, cooldown=600,
                  received_cooldown=600)
    sc = rc.Scenario(c, params, set(), set(), set(), set())
    c.host('src', 95.0)
    c.host('down', 10.0, state='down')
    c.host('full', 95.0, vcpus=1)
    c.instance('locked', 'src', locked=True)
    c.instance('big', 'src', vcpus=2)
    sc.garbage_hosts.add('full')
    sc.garbage_instances.add('big')
    # big came from full a minute ago: moving it back breaks the cooldown
    c.history.append(rc.migrations.Migration('big', 'full', 'src',
                                             rc.NOW - 60))
    strategy = c.strategy(**sc.params)
    strategy.pre_execute()
    before = rc._before(c.model)
    model = c.model
    model.migrate_instance(model.get_instance_by_uuid('big'),
                           model.get_node_by_name('src'),
                           model.get_node_by_name('full'))
    plan = [('locked', 'src', 'down'), ('big', 'src', 'full'),
            ('locked', 'src', 'src')]
    found = rc.breaches(sc, strategy, plan, *before)
    assert found == collections.Counter(
        max_migrations_exceeded=1, two_moves_from_one_source=1,
        instance_moved_twice=1, unmovable_instance=2,
        instance_returned_in_cooldown=1, source_in_cooldown=3,
        same_host_destination=1, disabled_or_down_destination=1,
        over_committed_destination=1, failing_destination=2,
        unevaluable_destination=0, garbage_destination=1,
        garbage_instance_moved=1)
