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

"""A stretch's twin: the same past, the future its last cycle repeated."""

import importlib.util
import pathlib

import numpy as np
import pytest

from watcher_failpredict.testbed import cluster
from watcher_failpredict.testbed import runner
from watcher_failpredict.testbed import twin

from tests.unit.testbed import test_lookahead
from tests.unit.testbed import test_planner

K = 120          # 10 minutes into the test stretch (5 s steps)
AHEAD = 600      # seconds of the future replaced


def test_a_row_repeats_its_last_cycle_and_one_without_a_cycle_has_none():
    t = np.arange(400)
    row = 5 + 3 * np.sin(2 * np.pi * t / 90)
    ahead = twin.last_cycle_repeated(row, 10, 60)
    np.testing.assert_allclose(ahead, row[400 - 90:400 - 30], atol=1e-9)
    assert twin.last_cycle_repeated(np.full(400, 2.0), 10, 60) is None


def test_samples_are_averaged_into_spans_that_end_at_the_last():
    np.testing.assert_allclose(twin.at_interval([9, 1, 2, 3, 4], 2),
                               [1.5, 3.5])


def make(scn, seed=3):
    return cluster.Testbed(scn, seed, 'train'), cluster.Testbed(scn, seed)


def test_where_the_load_repeats_exactly_the_twin_is_the_future_itself():
    before, tb = make(test_lookahead.exact_cycles())
    real = tb.bg.copy()
    written = twin.repeat_cycle(tb, before, 1, K, AHEAD, 3600, 10, 300)
    assert written.size == AHEAD / tb.dt
    # the sine server's cycle is found within a step of 10 s
    scale = real[1].max()
    assert np.abs(twin.at_interval(written, 2) - twin.at_interval(
        real[1, K:K + written.size], 2)).max() <= 0.08 * scale


def test_the_twin_keeps_the_past_and_other_servers_and_repeats_the_cycle():
    # the test stretch's cycles drifted: the future is not the last cycle
    scn = test_planner.drifted()
    before, tb = make(scn)
    real = tb.bg.copy()
    written = twin.repeat_cycle(tb, before, 1, K, AHEAD, 3600, 10, 300)
    np.testing.assert_array_equal(tb.bg[:, :K], real[:, :K])
    np.testing.assert_array_equal(np.delete(tb.bg, 1, axis=0),
                                  np.delete(real, 1, axis=0))
    np.testing.assert_array_equal(tb.bg[1, K + written.size:],
                                  real[1, K + written.size:])
    # what is written is the history at collectd's 10 s one cycle back
    past = twin.at_interval(np.concatenate([before.bg[1], real[1, :K]])[
        -720:], 2)
    tens = twin.at_interval(written, 2)
    cyc = [c for c in range(60, past.size + 1)
           if np.allclose(past[past.size - c:past.size - c + tens.size],
                          tens)]
    assert cyc, 'the twin is no stretch of the history'
    # the sine server's cycle: 900 s before the drift, 720 s after it
    assert 700 <= cyc[0] * 10 <= 950
    assert np.abs(tens - twin.at_interval(
        real[1, K:K + written.size], 2)).max() > 1.0


def test_a_testbed_run_past_the_step_or_a_history_without_cycle_is_refused():
    scn = test_lookahead.exact_cycles()
    before, tb = make(scn)
    tb.run_until(K + 1)
    with pytest.raises(ValueError, match='run past step 120'):
        twin.repeat_cycle(tb, before, 1, K, AHEAD, 3600, 10, 300)
    before, tb = make(scn)
    before.bg[2] = 1.0
    tb.bg[2] = 1.0
    with pytest.raises(ValueError, match='server 2.*no cycle'):
        twin.repeat_cycle(tb, before, 2, K, AHEAD, 3600, 10, 300)


def test_a_run_in_the_twin_world_is_the_same_until_the_step():
    scn = test_planner.drifted()
    before = cluster.Testbed(scn, 3, 'train')

    def world(tb):
        twin.repeat_cycle(tb, before, 1, K, AHEAD, 3600, 10, 300)

    real, _ = runner.run_policy(scn, 'no-mig', 3)
    other, _ = runner.run_policy(scn, 'no-mig', 3, world=world)
    cpu, cpu2 = real.rec_cpu[1], other.rec_cpu[1]
    np.testing.assert_array_equal(cpu[:K], cpu2[:K])
    assert np.abs(cpu[K:K + 120] - cpu2[K:K + 120]).max() > 5.0
    np.testing.assert_array_equal(real.rec_cpu[0], other.rec_cpu[0])


def load_bench():
    path = pathlib.Path(__file__).resolve().parents[3] / 'bench' / \
        'twin_worlds.py'
    spec = importlib.util.spec_from_file_location('twin_worlds', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_bench_runs_a_policy_first_move_on_both_worlds():
    bench = load_bench()
    scn = test_planner.drifted()
    rows, move = bench.one_seed(scn, 3, 'least-cpu', 'test', [])
    assert move is not None and move['same_first_move_on_twin']
    worlds = {(r['world'], r['policy']) for r in rows}
    assert worlds == {(w, p) for w in ('real', 'twin')
                      for p in ('least-cpu', 'no-mig', 'planner-perfect')}
    real = {r['policy']: r for r in rows if r['world'] == 'real'}
    other = {r['policy']: r for r in rows if r['world'] == 'twin'}
    # the same first move, and a changed world after it
    assert other['least-cpu']['moves'][0] == real['least-cpu']['moves'][0]
    assert other['no-mig']['mean_rt_all'] != real['no-mig']['mean_rt_all']
    lines = bench.table(rows, ['least-cpu', 'no-mig'])
    assert len(lines) == 4
    assert lines[1].startswith('real  no-mig') and '+0.000 ms' in lines[1]
    assert 'better on 0/1 seeds' in lines[1]
