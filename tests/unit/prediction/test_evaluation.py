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

"""The evaluation report: metrics on known inputs, every method on the same
time-ordered split, nothing tuned on the test stretch, table/JSON/PNG.
"""

import json

import numpy as np
import pytest

from watcher_failpredict.cmd import main as cli
from watcher_failpredict.prediction import bundle as bundle_mod
from watcher_failpredict.prediction import evaluation as ev
from watcher_failpredict.prediction import traces


def test_binary_metrics_known_values():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.9])
    m = ev.binary_metrics(y, p, 0.5)
    assert m['roc_auc'] == pytest.approx(0.75)
    assert m['precision'] == pytest.approx(0.5)
    assert m['recall'] == pytest.approx(0.5)
    assert m['brier'] == pytest.approx(np.mean((p - y) ** 2))
    one = ev.binary_metrics(np.zeros(3, int), np.zeros(3), 0.5)
    assert one['pr_auc'] is None and one['roc_auc'] is None


def test_lead_times_first_alarm_within_the_horizon():
    state = np.zeros((2, 20), dtype=bool)
    state[0, 10:13] = True           # onset at column 10
    state[1, 15:] = True             # onset at column 15, never alarmed
    risk = np.zeros((2, 20))
    risk[0, 8:] = 0.9                # alarm from decision time 8
    out = ev.lead_times(state, risk, 0.5, test_start=5, horizon_steps=4,
                        step=60)
    assert out['onsets'] == 2 and out['caught'] == 1
    assert out['median_lead_s'] == pytest.approx((10 + 1 - 8) * 60)
    # onsets too early for the test stretch are not counted
    assert ev.lead_times(state, risk, 0.5, 12, 4, 60)['onsets'] == 1


def test_destination_regret_against_the_best_feasible_host():
    peak = np.array([[95.0], [70.0], [50.0]])
    failing = np.array([[True], [False], [False]])
    good = np.array([[0.0], [0.2], [0.1]])   # failing host 0 never chosen
    bad = np.array([[0.0], [0.1], [0.2]])
    assert ev.destination_regret(good, peak, failing, [0])['mean_regret'] \
        == 0.0
    assert ev.destination_regret(bad, peak, failing, [0])['mean_regret'] \
        == pytest.approx(20.0)
    assert ev.destination_regret(bad, peak, np.ones((3, 1), bool),
                                 [0])['decisions'] == 0


@pytest.fixture(scope='module')
def small():
    w = traces.synthetic_periodic(n_hosts=5, days=0.4, step=60, seed=3)
    r = ev.evaluate(w, threshold=90, period=300, horizon=600, window=1800,
                    model_kinds=('gbt',), cycle=3600, name='syn')
    return w, r


def test_every_method_scored_on_the_same_samples(small):
    w, r = small
    names = set(r['methods'])
    assert {'persistence', 'least_cpu_now', 'mean_kstd', 'linear_trend',
            'seasonal_naive', 'gbt'} == names
    for m in r['methods'].values():
        assert 0 <= m['pr_auc'] <= 1 and 0 <= m['brier'] <= 1
        assert m['destination']['decisions'] == r['destination_decisions']
    a = r['_arrays']
    assert all(s.shape == a['y'].shape for s in a['scores'].values())
    # time-ordered: every test sample after every training sample
    assert r['train_span'][1] <= r['test_span'][0] + 1800
    assert r['verdict']['best_model'] == 'gbt'
    assert 'beats_best_baseline' in r['verdict']
    text = ev.format_report(r)
    assert 'seasonal_naive' in text and 'PR-AUC' in text


def test_nothing_is_tuned_on_the_test_stretch(small):
    w, r = small
    cpu = w.data['cpu'].copy()
    n = cpu.shape[1]
    cpu[:, int(n * 0.8):] = 100.0 - cpu[:, int(n * 0.8):]   # scramble test
    w2 = type(w)(names=w.names, times=w.times, step=w.step,
                 data=dict(w.data, cpu=cpu), last_seen=w.last_seen)
    r2 = ev.evaluate(w2, threshold=90, period=300, horizon=600, window=1800,
                     model_kinds=('gbt',), cycle=3600, name='syn')
    for name in r['methods']:
        assert r2['methods'][name]['threshold'] == \
            r['methods'][name]['threshold']
    assert r2['methods']['gbt']['pr_auc'] != r['methods']['gbt']['pr_auc']


def test_json_and_plots(small, tmp_path):
    w, r = small
    path = ev.write_json(r, tmp_path / 'r.json')
    data = json.loads(open(path).read())
    assert data['methods']['gbt']['kind'] == 'model'
    assert '_arrays' not in data
    pngs = ev.write_plots(r, str(tmp_path))
    assert len(pngs) == 3
    for p in pngs:
        with open(p, 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_cli_train_trace_report_and_compare_models_on_bundle(tmp_path, capsys):
    out = tmp_path / 'm.joblib'
    small = ['--trace-opt', 'n_hosts=5', '--trace-opt', 'days=0.4']
    rc = cli.main(['train', '--trace', 'synthetic', '--model-kind', 'gbt',
                   *small,
                   '--horizon', '10m', '--window', '30m', '--cycle', '1h',
                   '--out', str(out), '--report', str(tmp_path / 'rep')])
    text = capsys.readouterr().out
    assert rc == 0 and out.exists()
    assert 'least_cpu_now' in text and 'svm_nystroem' in text
    assert (tmp_path / 'rep' / 'report.json').exists()
    rc = cli.main(['compare-models', '--bundle', str(out), '--trace',
                   'synthetic', '--sha256', bundle_mod.file_sha256(out),
                   *small,
                   '--out-dir', str(tmp_path / 'rep2')])
    captured = capsys.readouterr()
    assert rc == 0 and 'bundle' in captured.out
    assert 'trained on' in captured.err
    assert 'deprecated' not in captured.err
    data = json.loads((tmp_path / 'rep2' / 'report.json').read_text())
    assert data['methods']['bundle']['pr_auc'] > 0.5
    assert cli.main(['compare-models', '--bundle', str(out)]) == 2


def test_verdict_judges_the_chosen_model_not_the_test_stretch_best():
    methods = {
        'persistence': {'kind': 'baseline', 'pr_auc': 0.50,
                        'destination': {'mean_regret': 4.0}},
        'least_cpu_now': {'kind': 'baseline', 'pr_auc': 0.40,
                          'destination': {'mean_regret': 5.0}},
        'gbt_peak': {'kind': 'model', 'pr_auc': 0.45,
                     'destination': {'mean_regret': 2.0}},
        'svm': {'kind': 'model', 'pr_auc': 0.60,
                'destination': {'mean_regret': 1.0}},
        'gbt': {'kind': 'model', 'pr_auc': None, 'error': 'one class'},
    }
    v = ev.verdict(methods, 'gbt_peak')
    assert v['chosen_model'] == 'gbt_peak' and v['best_model'] == 'svm'
    assert v['best_baseline'] == 'persistence'
    assert v['pr_auc_ratio'] == pytest.approx(0.9)
    assert v['beats_best_baseline'] is False
    assert v['regret_ratio_vs_least_cpu'] == pytest.approx(0.4)
    # a tie with the best baseline counts as "at least as good"
    methods['gbt_peak']['pr_auc'] = 0.50
    assert ev.verdict(methods, 'gbt_peak')['beats_best_baseline'] is True
    # a chosen model that could not be fitted: the best one is judged,
    # and the verdict says the chosen one is missing
    v = ev.verdict(methods, 'gbt')
    assert v['chosen_model'] == 'svm' and v['chosen_fitted'] is False
    assert 'could not be fitted' in ev.format_report(
        {'name': 'x', 'hosts': 1, 'n_train': 1, 'n_test': 1,
         'positive_rate_test': 0.1, 'destination_decisions': 0,
         'config': {'granularity': 60, 'threshold': 90, 'horizon': 600,
                    'window': 1800}, 'methods': methods, 'verdict': v})
