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

"""Label contamination: samples touched by a migration are not trained on.

Once the plugin acts, a relieved host's would-be failure is never
observed: its history shows a rise, then a drop. Trained on such samples a
model learns that rising hosts recover by themselves.
"""

import json

import numpy as np
import pytest

from watcher_failpredict.datasources import windows as metric_windows
from watcher_failpredict.prediction import contamination
from watcher_failpredict.prediction import training

STEP = 60
START = 1_700_000_000.0


def _windows(cpu):
    cpu = np.asarray(cpu, dtype=float)
    times = START + STEP * np.arange(cpu.shape[1], dtype=float)
    return metric_windows.ClusterWindows(
        names=tuple(f'h{i}' for i in range(cpu.shape[0])), times=times,
        step=STEP, data={'cpu': cpu}, last_seen=np.full(cpu.shape[0], 0.0))


def test_contaminated_samples_marks_window_and_horizon_overlap():
    w = _windows(np.zeros((2, 100)))
    t = np.array([10, 20, 30, 40, 20])
    h = np.array([0, 0, 0, 0, 1])
    # migration on h0 during columns 24..25 (seconds from START)
    iv = [('h0', START + 24 * STEP, START + 25 * STEP),
          ('unknown-host', START, START + 1e6)]
    mask = contamination.contaminated_samples(w, t, h, 5, 5, iv)
    # t=20 labels columns 20..24 -> touched; t=30 window 25..29 -> touched
    assert mask.tolist() == [False, True, True, False, False]
    assert not contamination.contaminated_samples(w, t, h, 5, 5, None).any()


def test_load_intervals_csv_json_and_errors(tmp_path):
    csv_path = tmp_path / 'm.csv'
    csv_path.write_text('host,start,end\nh0,100,160\n'
                        'h1,2023-11-14T22:13:20,2023-11-14T22:14:20\n')
    got = contamination.load_intervals(csv_path)
    assert got[0] == ('h0', 100.0, 160.0)
    assert got[1] == ('h1', 1700000000.0, 1700000060.0)
    js = tmp_path / 'm.json'
    js.write_text(json.dumps([{'host': 'h0', 'start': 1, 'end': 2},
                              ['h1', 3, 4]]))
    assert contamination.load_intervals(js) == [('h0', 1.0, 2.0),
                                                ('h1', 3.0, 4.0)]
    bad = tmp_path / 'bad.csv'
    bad.write_text('node,from,to\nh0,1,2\n')
    with pytest.raises(ValueError, match='lacks'):
        contamination.load_intervals(bad)
    bad.write_text('host,start,end\nh0,10,5\n')
    with pytest.raises(ValueError, match='end 5 before start 10'):
        contamination.load_intervals(bad)
    bad.write_text('host,start,end\nh0,soon,5\n')
    with pytest.raises(ValueError, match='soon'):
        contamination.load_intervals(bad)


def test_intervals_from_watcher_actions():
    actions = [
        {'action_type': 'migrate', 'state': 'SUCCEEDED',
         'input_parameters': {'source_node': 'h0',
                              'destination_node': 'h1'},
         'created_at': '2023-11-14T22:13:20+00:00',
         'updated_at': '2023-11-14T22:15:00+00:00'},
        {'action_type': 'migrate', 'state': 'PENDING',    # never ran
         'input_parameters': {'source_node': 'h2'},
         'created_at': 0, 'updated_at': 0},
        {'action_type': 'nop', 'state': 'SUCCEEDED'},
    ]
    got = contamination.intervals_from_actions(actions)
    assert got == [('h0', 1700000000.0, 1700000100.0),
                   ('h1', 1700000000.0, 1700000100.0)]


def _ramps(n_hosts=4, cycles=24, migrated_every=2):
    """Ramps 30 -> 102 % per hour; in every other cycle the host is
    relieved (a migration) at 84 %, before it would have failed.
    """
    n = 60 * cycles
    cpu = np.empty((n_hosts, n))
    intervals = []
    rng = np.random.RandomState(0)
    for hh in range(n_hosts):
        shift = 15 * hh
        for c in range(-1, cycles + 1):
            lo = c * 60 + shift
            seg = 30 + 72 * np.arange(60) / 59.0
            if c % migrated_every == 1:
                seg[45:] = 30.0
                intervals.append((f'h{hh}', START + (lo + 44) * STEP,
                                  START + (lo + 46) * STEP))
            a, b = max(lo, 0), min(lo + 60, n)
            if a < b:
                cpu[hh, a:b] = seg[a - lo:b - lo]
    cpu += rng.normal(0, 1.5, cpu.shape)
    return _windows(np.clip(cpu, 0, 100)), intervals


def test_training_without_contaminated_samples_sees_the_failures():
    w, intervals = _ramps()
    kw = dict(threshold=90, period=180, horizon=600, window=900,
              model_kind='gbt')
    dirty, ev_dirty = training.train(w, **kw)
    clean, ev_clean = training.train(w, exclude_intervals=intervals, **kw)
    assert ev_clean['excluded_contaminated'] > 0
    assert ev_dirty['excluded_contaminated'] == 0
    assert clean.metadata['excluded_contaminated'] == \
        ev_clean['excluded_contaminated']
    assert ev_clean['n_train'] < ev_dirty['n_train']
    # a host ramping through 80 %: without exclusion, half of such ramps
    # "recovered" (they were migrated), so the risk is underestimated
    ramp = 30 + 72 * np.arange(60) / 59.0
    probe = _windows(np.tile(ramp[25:43], (1, 1)))
    r_dirty = dirty.predict_risk(probe)[0]
    r_clean = clean.predict_risk(probe)[0]
    assert r_clean > 0.8
    assert r_clean > r_dirty + 0.2
