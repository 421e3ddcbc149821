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

"""The audit cluster builder: what the strategy's tests stand on."""

import numpy as np
import pytest

from watcher_failpredict.datasources import windows as metric_windows
from watcher_failpredict.testbed import audit_cluster


def test_host_metrics_end_at_now_minus_age_and_risk_is_mean_cpu():
    c = audit_cluster.Cluster()
    cpu = np.linspace(0.0, 100.0, audit_cluster.Cluster.n)
    c.host('a', cpu)
    c.host('b', 40.0, age=200)
    win = c.ds.cluster_windows(
        metric_windows.COMPUTE_NODE, ['a', 'b'], period=300,
        granularity=audit_cluster.STEP, end=audit_cluster.NOW)
    risk = audit_cluster.MeanCpuRisk()
    got = risk.predict_risk(win)
    assert risk.calls == 1
    # the newest 30 windows of 10 s hold the newest samples of 'a'
    assert got[win.index('a')] == pytest.approx(cpu[-29:].mean() / 100.0,
                                                abs=0.03)
    # 'b' reported 40 % until 200 s ago: its recent windows are empty
    assert got[win.index('b')] == pytest.approx(0.40)


def test_series_of_the_wrong_length_is_refused():
    c = audit_cluster.Cluster()
    with pytest.raises(ValueError, match='60 samples'):
        c.host('a', [50.0, 60.0])
