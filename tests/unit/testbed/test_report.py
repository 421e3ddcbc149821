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

"""The QoS figures: the headline counts every request, timeouts included."""

import numpy as np
import pytest

from watcher_failpredict.testbed import cluster
from watcher_failpredict.testbed import report
from watcher_failpredict.testbed import scenario

from tests.unit.testbed import test_run


@pytest.fixture
def two_steps():
    """A testbed whose record is written by hand: 2 steps, 3 chains."""
    scn = scenario.validate(test_run.SHORT)
    tb = cluster.Testbed(scn, 1)
    tb.k = 2
    ns = scn['latency_samples']
    tb.rec_samples[:2] = np.nan
    # chain 0: 100 requests completed at 20 ms, 50 timed out
    tb.rec_samples[0, 0, :] = 0.020
    tb.rec_completed[0, 0] = 100.0
    tb.rec_timeouts[0, 0] = 50.0
    # chain 1: 100 completed, half of the samples at 10 ms, half at
    # 300 ms (past the 77 ms objective)
    tb.rec_samples[1, 1, :ns // 2] = 0.010
    tb.rec_samples[1, 1, ns // 2:] = 0.300
    tb.rec_completed[1, 1] = 100.0
    return tb


def test_slo_is_the_chain_at_80_percent_utilisation_per_hop():
    paper = scenario.load('paper')
    # 5 x (2 + 4 + 6 + 3 ms) + 4 x 0.5 ms links
    assert report.slo_seconds(paper) == pytest.approx(0.077)


def test_mean_rt_all_counts_each_timeout_at_the_timeout(two_steps):
    out = report.summarize(two_steps)
    # completed only (the paper's): 100 at 20 ms, 50 at 10, 50 at 300
    assert out['mean_rt'] == pytest.approx(1000 * (
        100 * 0.020 + 50 * 0.010 + 50 * 0.300) / 200)
    # all requests: the 50 timeouts at 2 s each
    assert out['mean_rt_all'] == pytest.approx(1000 * (
        100 * 0.020 + 50 * 0.010 + 50 * 0.300 + 50 * 2.0) / 250)
    # within 77 ms: 100 + 50 of 250 requests, over 10 s
    assert out['slo_goodput'] == pytest.approx(150 / 10.0)
    assert out['slo_miss'] == pytest.approx(100.0 * (1 - 150 / 250))
    assert out['timeouts'] == 50.0


def test_fewer_completed_requests_cannot_improve_the_headline(two_steps):
    # turning chain 1's slow requests into timeouts lowers the paper's
    # mean RT, and raises the headline
    before = report.summarize(two_steps)
    two_steps.rec_samples[1, 1, 8:] = np.nan
    two_steps.rec_completed[1, 1] = 50.0
    two_steps.rec_timeouts[1, 1] = 50.0
    after = report.summarize(two_steps)
    assert after['mean_rt'] < before['mean_rt']
    assert after['mean_rt_all'] > before['mean_rt_all']
    assert after['slo_goodput'] == before['slo_goodput']


def test_gains_and_oracle_share_use_the_headline():
    def runs(rt_all, rt, thr):
        row = dict.fromkeys(report.METRICS, 1.0)
        row.update(mean_rt_all=rt_all, mean_rt=rt, throughput=thr,
                   slo_goodput=thr)
        return [row]
    agg = report.aggregate({'no-mig': runs(100.0, 40.0, 10.0),
                            'least-cpu': runs(90.0, 20.0, 9.0),
                            'oracle': runs(50.0, 30.0, 11.0)})
    assert agg['least-cpu']['gain'] == pytest.approx(0.1)
    assert agg['least-cpu']['gain_rt'] == pytest.approx(0.5)
    assert agg['least-cpu']['gain_slo_goodput'] == pytest.approx(-0.1)
    assert agg['oracle']['gain'] == pytest.approx(0.5)
    assert agg['least-cpu']['oracle_share'] == pytest.approx(0.2)
    assert agg['oracle']['oracle_share'] == pytest.approx(1.0)
    text = report.table(agg, 1)
    assert 'RT all ms' in text and 'of oracle' in text
