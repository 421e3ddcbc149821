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

"""Trace loaders and the synthetic load.

The Azure subset ships with the package, so its tests always run; the
research-only sets (Alibaba, Bitbrains) are read from the traces directory
($FAILPREDICT_TRACES, else the user cache) and their tests skip, saying how
to fetch them, when they are absent.
"""

import numpy as np
import pytest

from watcher_failpredict.prediction import labels as lab
from watcher_failpredict.prediction import traces
from watcher_failpredict.tracesets import catalog
from watcher_failpredict.tracesets import location


def needs_set(name):
    trace_set = catalog.get(name)
    return pytest.mark.skipif(
        bool(catalog.missing_files(trace_set)),
        reason=f'research-only trace set {name} not in the traces directory '
               f'{location.traces_dir()}; '
               f'{catalog.fetch_instruction(trace_set.folder)}')


def test_vms_to_hosts_sums_by_size_and_keeps_gaps():
    vm = np.array([[50., 50., np.nan],
                   [100., 0., 10.],
                   [20., 20., 20.],
                   [200., 200., 200.]])
    hosts, groups = traces.vms_to_hosts(vm, sizes=[2, 2, 1, 1],
                                        vms_per_host=2, overcommit=1.0,
                                        seed=0)
    assert hosts.shape == (2, 3) and len(groups) == 2
    for j, g in enumerate(groups):
        sizes = np.array([2, 2, 1, 1])[g]
        expected = np.clip((vm[g] * sizes[:, None]).sum(0) / sizes.sum(),
                           0, 100)
        np.testing.assert_allclose(hosts[j], expected)
    assert np.isnan(hosts).sum() == 1      # the missing VM sample
    assert np.nanmax(hosts) <= 100.0       # saturation clip
    with pytest.raises(ValueError, match='overcommit'):
        traces.vms_to_hosts(vm, overcommit=0)


def test_synthetic_is_deterministic_and_periodic():
    a = traces.synthetic_periodic(n_hosts=5, days=0.25, seed=1)
    b = traces.synthetic_periodic(n_hosts=5, days=0.25, seed=1)
    np.testing.assert_array_equal(a.data['cpu'], b.data['cpu'])
    assert a.data['cpu'].shape == (5, 360) and a.step == 60
    state = lab.failure_state(a.data['cpu'], 90, 5)
    assert state[:4].any() and not state[4].any()   # calm host never fails


def test_traces_dir_env_and_missing_file(tmp_path, monkeypatch):
    monkeypatch.setenv(traces.TRACES_ENV, str(tmp_path))
    assert traces.traces_dir() == str(tmp_path)
    with pytest.raises(location.TraceSetMissing,
                       match=r'alibaba2018_machines/machine_usage_5min\.csv '
                             r'not found .*; fetch it with: '
                             r'watcher-failpredict traces fetch alibaba '
                             r'\(licence: research or study use only'):
        traces.load_alibaba()
    with pytest.raises(location.TraceSetMissing,
                       match=r'traces fetch bitbrains'):
        traces.load_bitbrains()
    with pytest.raises(ValueError, match='unknown trace'):
        traces.load_trace('google')


@needs_set('alibaba')
def test_alibaba_host_level():
    w = traces.load_alibaba(resolution='5min')
    assert len(w.names) == 16 and w.step == 300
    assert w.data['cpu'].shape[1] == 2304
    assert np.nanmin(w.data['cpu']) >= 0 and np.nanmax(w.data['cpu']) <= 100
    # 9-16 % of bins empty on full machines: gaps stay NaN
    assert 0.05 < np.isnan(w.data['cpu']).mean() < 0.4
    state = lab.failure_state(w.data['cpu'], 80, 1)
    assert 0 < state.mean() < 0.05         # rare, as the README says


@needs_set('bitbrains')
def test_bitbrains_vms_on_simulated_hosts():
    bb = traces.load_bitbrains()
    assert len(bb.names) == 15 and bb.step == 300
    assert bb.data['cpu'].shape[1] == 26207
    assert lab.failure_state(bb.data['cpu'], 90, 1).mean() > 0.01


def test_azure_vms_on_simulated_hosts_from_the_shipped_subset(
        tmp_path, monkeypatch):
    # an empty traces directory: the package's own copy is read
    monkeypatch.setenv(traces.TRACES_ENV, str(tmp_path))
    az = traces.load_azure()
    assert len(az.names) == 17 and az.data['cpu'].shape[1] == 8004
    assert not np.isnan(az.data['cpu']).any()
    assert lab.failure_state(az.data['cpu'], 90, 1).any()
    avg = traces.load_azure(signal='avg')
    assert np.all(avg.data['cpu'] <= az.data['cpu'] + 1e-9)
