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

"""The failpredict_risk scoring engine, as Watcher's scoring_factory serves it.

A real model trained by the project's training API, saved as a bundle and
configured through ``[failpredict] model_path`` / ``model_sha256``; the engine
is obtained from Watcher's own factory (stevedore entry point
``watcher_scoring_engines``), as the decision engine's sync does.
"""

import json

import numpy as np
import pytest
from watcher.decision_engine.scoring import scoring_factory

from tests.unit.strategies import test_strategy as ts
from watcher_failpredict import conf as fp_conf
from watcher_failpredict.datasources import windows as metric_windows
from watcher_failpredict.prediction import bundle as bundle_mod
from watcher_failpredict.prediction import training
from watcher_failpredict.scoring import engine as engine_mod


@pytest.fixture(scope='module', params=['svm', 'gbt_peak'])
def trained(request):
    history = ts._training_history()
    bundle, _ = training.train(history, threshold=90.0, period=300,
                               horizon=600, window=300, stride=4,
                               model_kind=request.param)
    return bundle, history


@pytest.fixture
def configured(trained, tmp_path):
    bundle, history = trained
    path = str(tmp_path / 'model.joblib')
    digest = bundle_mod.save_bundle(bundle, path)
    fp_conf.CONF.set_override('model_path', path, group='failpredict')
    fp_conf.CONF.set_override('model_sha256', digest, group='failpredict')
    yield path, digest, bundle, history
    fp_conf.CONF.clear_override('model_path', group='failpredict')
    fp_conf.CONF.clear_override('model_sha256', group='failpredict')


def _engine():
    return scoring_factory.get_scoring_engine(engine_mod.NAME)


def test_listed_by_watcher_scoring_factory():
    engines = {e.get_name(): e for e in
               scoring_factory.get_scoring_engine_list()}
    assert isinstance(engines[engine_mod.NAME], engine_mod.FailureRiskScorer)
    assert 'dummy_scorer' in engines          # Watcher's own still there
    se = _engine()
    assert se.get_name() == 'failpredict_risk'
    # Watcher's DB column is String(255)
    assert 0 < len(se.get_description()) <= 255


def test_metainfo_presents_the_configured_model(configured):
    path, digest, bundle, _ = configured
    info = json.loads(_engine().get_metainfo())
    md = bundle.metadata
    assert info['status'] == 'loaded'
    assert info['sha256'] == digest
    assert info['model_path'] == path
    assert info['feature_columns'] == list(md['feature_names'])
    assert info['model_kind'] == md['model_kind'] in ('svm', 'gbt_peak')
    assert info['horizon'] == 600 and info['threshold'] == 90.0
    assert info['training_span'] == json.loads(
        json.dumps(md['training_span'], default=str))
    assert info['format_version'] == bundle_mod.FORMAT_VERSION
    assert info['engine_version']
    assert info['result_columns'] == ['risk']
    # deterministic text: Watcher's sync compares it to the stored row
    assert _engine().get_metainfo() == _engine().get_metainfo()


def test_calculate_score_matches_the_bundle(configured):
    _, _, bundle, history = configured
    win = history.subset(history.names)
    win = metric_windows.ClusterWindows(
        names=win.names, times=win.times[-30:], step=win.step,
        data={m: v[:, -30:] for m, v in win.data.items()},
        last_seen=win.last_seen)
    X = bundle.features(win)
    expected = bundle.predict_risk(win)
    got = json.loads(_engine().calculate_score(json.dumps(X.tolist())))
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    assert max(got) > 0.5 > min(got)     # ramping vs calm hosts differ
    by_host = json.loads(_engine().calculate_score(json.dumps(
        {n: row for n, row in zip(win.names, X.tolist())})))
    assert list(by_host) == list(win.names)
    np.testing.assert_allclose(list(by_host.values()), expected)
    # a row without its CPU feature cannot be scored: null
    row = [None] * X.shape[1]
    assert json.loads(_engine().calculate_score(json.dumps([row]))) == [None]


@pytest.mark.parametrize('features,match', [
    ('not json', 'not JSON'),
    ('42', 'JSON list of rows'),
    ('[[1, 2]]', 'row 0: expected a list of'),
    ('[["a", "b"]]', 'row 0'),
])
def test_calculate_score_rejects_bad_input(configured, features, match):
    if features == '[["a", "b"]]':
        n = len(configured[2].metadata['feature_names'])
        features = json.dumps([['a'] * n])
        match = 'row 0: non-numeric'
    with pytest.raises(ValueError, match=match):
        _engine().calculate_score(features)


def test_unconfigured_or_tampered_model_reported_not_raised(configured):
    path, digest, _, _ = configured
    with open(path, 'ab') as f:
        f.write(b'x')
    info = json.loads(_engine().get_metainfo())
    assert info['status'] == 'unavailable'
    assert 'sha256' in info['error'] and path in info['error']
    with pytest.raises(bundle_mod.ModelError, match='sha256'):
        _engine().calculate_score('[]')
    fp_conf.CONF.clear_override('model_path', group='failpredict')
    info = json.loads(_engine().get_metainfo())
    assert info['status'] == 'unavailable' and 'model_path' in info['error']


def test_unverified_model_refused_at_start_unless_opted_in(configured, caplog):
    """The decision engine syncs get_metainfo() at start: without a digest
    the pickle must not run there, nor in load().
    """
    path, digest, bundle, _ = configured
    fp_conf.CONF.clear_override('model_sha256', group='failpredict')
    se = engine_mod.FailureRiskScorer()
    info = json.loads(se.get_metainfo())
    assert info['status'] == 'unavailable'
    assert info['error'].startswith(f'model bundle {path}: no sha256 to '
                                    'check it against')
    with pytest.raises(bundle_mod.ModelError, match='allow_unverified_model'):
        se.load()
    fp_conf.CONF.set_override('allow_unverified_model', True,
                              group='failpredict')
    try:
        caplog.set_level('WARNING', logger=bundle_mod.LOG.name)
        first, got = se.load()
        assert got == digest and first.metadata == bundle.metadata
        assert se.load()[0] is first                    # cached ...
        warned = [r.getMessage() for r in caplog.records
                  if r.levelname == 'WARNING']
        assert len(warned) == 2                         # ... still warned
        assert all(f'Model bundle {path} is loaded WITHOUT a sha256 check'
                   in w for w in warned)
        assert json.loads(se.get_metainfo())['status'] == 'loaded'
    finally:
        fp_conf.CONF.clear_override('allow_unverified_model',
                                    group='failpredict')
    # the opt-in withdrawn: the cached model is not served any more
    with pytest.raises(bundle_mod.ModelError, match='no sha256'):
        se.load()


def test_retrained_file_is_reloaded_and_strategy_uses_the_same_model(
        configured):
    path, digest, bundle, _ = configured
    se = _engine()
    first, d1 = se.load()
    assert d1 == digest and se.load()[0] is first       # cached
    # the strategy scores with the very object the engine serves
    c = ts._rising_vs_calm_cluster()
    strategy = c.strategy()
    strategy.model_bundle = None
    assert ts.moves(strategy.execute()) == [('vnf', 'src', 'calm')]
    assert strategy.bundle is first
    # retrain (new metadata) -> new digest, reloaded, shown in metainfo
    new = bundle_mod.ModelBundle(bundle.model, dict(
        bundle.metadata, created_at='2030-01-01T00:00:00'))
    d2 = bundle_mod.save_bundle(new, path)
    fp_conf.CONF.set_override('model_sha256', d2, group='failpredict')
    second, got = se.load()
    assert got == d2 != d1 and second is not first
    info = json.loads(se.get_metainfo())
    assert info['sha256'] == d2 and info['created_at'].startswith('2030')


def test_injected_bundle_is_served_as_is(trained):
    bundle, _ = trained
    se = engine_mod.FailureRiskScorer(model_bundle=bundle)
    assert se.load() == (bundle, None)
    info = json.loads(se.get_metainfo())
    assert info['status'] == 'loaded' and info['model_path'] is None


def test_fixed_hosts_model_cannot_score_rows():
    fake = bundle_mod.ModelBundle(object(), {'model_kind': 'fixed_hosts',
                                             'feature_names': ['a']})
    with pytest.raises(ValueError, match='fixed_hosts'):
        engine_mod.FailureRiskScorer.score_rows(fake, [[1.0]])
