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

"""Training and held-out evaluation on a synthetic periodic workload."""

import numpy as np
import pytest

from watcher_failpredict.datasources import windows as metric_windows
from watcher_failpredict.prediction import bundle as bundle_mod
from watcher_failpredict.prediction import features as feat
from watcher_failpredict.prediction import models
from watcher_failpredict.prediction import training

STEP = 10
START = 1_700_000_000.0


def burst(t):
    """Idle at 40 %, then a fast climb (2 % per step) to a 100 % plateau.

    Ten steps into the climb the host is still below the calm hosts, yet a
    failure is due within the horizon: the case where least-CPU-now picks
    exactly the wrong destination.
    """
    x = np.asarray(t) % 240
    return np.select([x < 150, x < 180, x < 210],
                     [40.0, 40.0 + 2.0 * (x - 150), 100.0], 40.0)


def patterns(t):
    """CPU patterns of the synthetic cluster, percent, by host name.

    Sines and ramps (sawtooth) cross 90 % once per cycle; the calm hosts
    never do, whatever their level.
    """
    return {
        'sine-a': 60 + 38 * np.sin(2 * np.pi * t / 240),
        'sine-b': 60 + 38 * np.sin(2 * np.pi * t / 360 + 1.0),
        'ramp-a': 30 + 72 * ((t % 300) / 300.0),
        'ramp-b': 30 + 72 * (((t + 130) % 200) / 200.0),
        'burst': burst(t),
        'calm-a': np.full(t.shape, 80.0),
        'calm-b': np.full(t.shape, 55.0),
    }


def make_windows(cpu_by_host, seed=0, step=STEP, start=START):
    """ClusterWindows with memory/load/disk/net loosely following CPU."""
    rng = np.random.RandomState(seed)
    names = tuple(cpu_by_host)
    cpu = np.array([cpu_by_host[n] for n in names], dtype=float)
    noisy = np.clip(cpu + rng.normal(0, 3, cpu.shape), 0, 100)
    noisy[np.isnan(cpu)] = np.nan
    data = {
        'cpu': noisy,
        'memory': 40 + 0.3 * noisy + rng.normal(0, 1, cpu.shape),
        'load': noisy / 10 + rng.normal(0, 0.2, cpu.shape),
        'disk': 1e5 * (1 + noisy / 50),
        'net': 1e6 * (1 + noisy / 50),
    }
    times = start + step * np.arange(cpu.shape[1], dtype=float)
    return metric_windows.ClusterWindows(
        names=names, times=times, step=step, data=data,
        last_seen=np.full(len(names), times[-1]))


def synthetic_windows(n_steps=2880, seed=0):
    """Eight hours of 10 s data of the synthetic cluster."""
    return make_windows(patterns(np.arange(n_steps)), seed)


@pytest.fixture(scope='module')
def trained():
    calls = []
    bundle, evaluation = training.train(
        synthetic_windows(), threshold=90, period=300, horizon=300,
        window=600, max_samples=2000,
        progress=lambda *a: calls.append(a))
    return bundle, evaluation, calls


def test_held_out_scores_beat_persistence(trained):
    _, ev, _ = trained
    assert ev['model']['roc_auc'] > 0.8
    assert ev['model']['pr_auc'] > 0.6
    assert ev['model']['roc_auc'] > ev['baseline_persistence']['roc_auc']
    assert ev['beats_baseline'] is True
    assert 0 < ev['positive_rate_test'] < 1
    assert ev['n_train'] > 3 * ev['n_test'] / 2
    for key in ('precision', 'recall', 'f1'):
        assert 0 <= ev['model'][key] <= 1


def test_split_is_time_ordered_with_a_gap(trained):
    _, ev, _ = trained
    train_end = np.datetime64(ev['train_span'][1][:19])
    test_start = np.datetime64(ev['test_span'][0][:19])
    # the test stretch starts (its first window included) after training
    # stops, with the labels' horizon in between
    assert test_start - train_end >= np.timedelta64(300, 's')


def test_metadata_and_progress(trained):
    bundle, ev, calls = trained
    md = bundle.metadata
    assert set(bundle_mod.REQUIRED_METADATA) <= set(md)
    assert md['feature_names'] == feat.feature_names()
    assert (md['threshold'], md['period'], md['horizon'], md['window'],
            md['granularity']) == (90.0, 300, 300, 600, 10)
    assert md['hosts_seen'] == list(patterns(np.arange(1)))
    assert md['model_kind'] == 'svm' and md['evaluation'] is ev
    assert md['n_samples'] == ev['n_train']
    assert md['training_span'][0].startswith('2023-11-14T22:13:20')
    assert set(md['library_versions']) == {'sklearn', 'numpy', 'python'}
    fit = bundle.model.named_steps['classify']
    assert fit.n_fit_samples_ <= 2000 + 2
    finished = [c[0] for c in calls if c[1] == c[2]]
    assert finished == ['features', 'fit', 'evaluate']


def test_ranks_a_host_about_to_saturate_above_a_calmer_busier_one(trained):
    """The least-CPU-now host is rising toward saturation; a calm host is
    busier right now but steady. The model must rank the riser riskier.
    """
    bundle = trained[0]
    # later than anything seen in training, 20 steps into a climb: the
    # burst host is at ~72 %, the calm one at ~80 %
    end = 240 * 20 + 170
    windows = make_windows({
        'burst': burst(np.arange(end - 60, end)),
        'calm': np.full(60, 80.0),
    }, seed=3)
    cpu = windows.data['cpu']
    assert np.mean(cpu[0, -3:]) < np.mean(cpu[1, -3:]) - 5  # least CPU now
    risk = bundle.predict_risk(windows)
    assert risk[0] > 0.2
    assert risk[0] > 10 * risk[1]


def test_single_class_training_data_is_refused():
    calm = make_windows({'a': np.full(600, 40.0), 'b': np.full(600, 50.0)})
    with pytest.raises(ValueError, match='no failure samples.*threshold'):
        training.train(calm, max_samples=200)
    hot = make_windows({'a': np.full(600, 99.0)})
    hot.data['cpu'][:] = 99.0
    with pytest.raises(ValueError, match='only failure samples'):
        training.train(hot, max_samples=200)


def test_bad_parameters_are_refused():
    w = synthetic_windows(400)
    with pytest.raises(ValueError, match='multiple of the granularity'):
        training.train(w, window=605)
    with pytest.raises(ValueError, match='history too short'):
        training.train(w, window=3000, horizon=600)
    with pytest.raises(ValueError, match='unknown model kind'):
        training.train(w, model_kind='forest')
    with pytest.raises(ValueError, match='test_fraction'):
        training.train(w, test_fraction=1.5)


def test_fixed_hosts_kind_beats_least_cpu_and_refuses_other_hosts():
    w = synthetic_windows()
    bundle, ev = training.train(w, model_kind='fixed_hosts',
                                max_samples=600)
    assert bundle.metadata['model_kind'] == 'fixed_hosts'
    oracle = ev['oracle']['mean_future_peak_cpu']
    for policy in ('model', 'baseline_least_cpu'):
        assert ev[policy]['mean_future_peak_cpu'] >= oracle
        assert 0 <= ev[policy]['destination_failure_rate'] <= 1
    assert ev['oracle']['accuracy'] == 1.0
    assert ev['model']['accuracy'] > 0.5        # 6 hosts: chance is 1/6
    assert ev['positive_rate_test'] is None
    recent = w.subset(w.names)
    risk = bundle.predict_risk(recent)
    assert risk.shape == (len(w.names),) and np.all((risk >= 0) &
                                                    (risk <= 1))
    with pytest.raises(ValueError, match='only score the host list'):
        bundle.predict_risk(w.subset(w.names[:4]))


def test_stratified_subsample_keeps_rare_class():
    y = np.array([0] * 990 + [1] * 10)
    idx = models.stratified_subsample(y, 100, random_state=0)
    assert idx.size <= 101 and 1 <= (y[idx] == 1).sum() <= 2
    assert np.array_equal(models.stratified_subsample(y, None),
                          np.arange(1000))


def test_make_model_kinds():
    m = models.make_model()
    assert [n for n, _ in m.steps] == ['impute', 'scale', 'classify']
    assert m.named_steps['classify'].max_samples == (
        models.DEFAULT_MAX_SAMPLES)
    with pytest.raises(ValueError, match='unknown model kind'):
        models.make_model('tree')
    with pytest.raises(ValueError, match='unknown svm parameter'):
        models.make_model('svm', n_trees=3)
