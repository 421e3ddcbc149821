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

"""The model bundle: round trip, atomic writes, tampering, compatibility."""

import hashlib
import os
import pickle

import joblib
import numpy as np
import pytest
from sklearn import linear_model

from tests.unit.prediction import test_training as synth
from watcher_failpredict.prediction import bundle as bundle_mod
from watcher_failpredict.prediction import features as feat
from watcher_failpredict.prediction import training

ModelError = bundle_mod.ModelError


@pytest.fixture(scope='module')
def trained():
    bundle, _ = training.train(synth.synthetic_windows(1600),
                               max_samples=300)
    return bundle


@pytest.fixture(scope='module')
def recent():
    return synth.make_windows(synth.patterns(np.arange(1000, 1080)), seed=7)


class Marker:
    """Unpickling this creates ``path`` (os.mkdir(path)): proof of load."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def write_payload(path, payload):
    joblib.dump(payload, path)
    return bundle_mod.file_sha256(path)


def test_round_trip_predicts_the_same(tmp_path, trained, recent):
    path = tmp_path / 'model.joblib'
    digest = bundle_mod.save_bundle(trained, path)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == bundle_mod.file_sha256(path)
    loaded = bundle_mod.load_bundle(path, expected_sha256=digest.upper())
    assert loaded.metadata == trained.metadata
    before, after = trained.predict_risk(recent), loaded.predict_risk(recent)
    np.testing.assert_allclose(before, after)
    assert before.shape == (len(recent.names),)
    assert np.all((before >= 0) & (before <= 1))
    assert os.listdir(tmp_path) == ['model.joblib']
    assert oct(path.stat().st_mode & 0o777) == '0o644'


def test_nan_risk_for_hosts_without_cpu(trained, recent):
    w = recent.subset(recent.names)
    w.data['cpu'][2, -trained.window_steps:] = np.nan
    risk = trained.predict_risk(w)
    assert np.isnan(risk[2])
    assert not np.isnan(np.delete(risk, 2)).any()
    w.data['cpu'][:] = np.nan
    assert np.isnan(trained.predict_risk(w)).all()


def test_unseen_hosts_are_scored(trained, recent):
    renamed = synth.make_windows(
        {f'new-{i}': recent.data['cpu'][i] for i in range(3)}, seed=1)
    risk = trained.predict_risk(renamed)
    assert risk.shape == (3,) and not np.isnan(risk).any()


def test_other_granularity_is_refused(trained):
    w = synth.make_windows({'a': np.full(60, 50.0)}, step=60)
    with pytest.raises(ValueError, match='60 s step.*10 s'):
        trained.predict_risk(w)


def test_save_replaces_atomically_and_cleans_up(tmp_path, trained):
    path = tmp_path / 'model.joblib'
    first = bundle_mod.save_bundle(trained, path)
    trained2 = bundle_mod.ModelBundle(
        trained.model, dict(trained.metadata, created_at='later'))
    second = bundle_mod.save_bundle(trained2, path)
    assert first != second
    assert bundle_mod.load_bundle(path, second).metadata['created_at'] == \
        'later'
    assert sorted(os.listdir(tmp_path)) == ['model.joblib']


def test_interrupted_write_leaves_old_file_intact(tmp_path, trained,
                                                  monkeypatch):
    path = tmp_path / 'model.joblib'
    digest = bundle_mod.save_bundle(trained, path)
    old = path.read_bytes()

    def dies_halfway(payload, f):
        f.write(b'\x80\x04half a pickle')
        raise KeyboardInterrupt('power cut')

    monkeypatch.setattr(bundle_mod.joblib, 'dump', dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        bundle_mod.save_bundle(trained, path)
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ['model.joblib']
    bundle_mod.load_bundle(path, expected_sha256=digest)


def test_save_refuses_incomplete_metadata(tmp_path, trained):
    md = dict(trained.metadata)
    del md['horizon']
    with pytest.raises(ValueError, match='horizon'):
        bundle_mod.save_bundle(bundle_mod.ModelBundle(trained.model, md),
                               tmp_path / 'm.joblib')
    assert os.listdir(tmp_path) == []


def test_tampered_file_is_refused_before_unpickling(tmp_path, trained):
    path = tmp_path / 'model.joblib'
    digest = bundle_mod.save_bundle(trained, path)
    marker = tmp_path / 'unpickled'
    # an attacker replaces the bundle by a pickle that runs code on load
    write_payload(path, {'format': bundle_mod.FORMAT,
                         'x': Marker(str(marker))})
    with pytest.raises(ModelError) as err:
        bundle_mod.load_bundle(path, expected_sha256=digest)
    assert str(path) in str(err.value) and 'sha256' in str(err.value)
    assert not marker.exists()
    # without a digest, it is refused unless the caller opts in
    with pytest.raises(ModelError, match='no sha256 to check it against'):
        bundle_mod.load_bundle(path)
    assert not marker.exists()
    # the same file with the opt-in does run the payload, so the checks
    # above are what kept it from running
    with pytest.raises(ModelError):
        bundle_mod.load_bundle(path, allow_unverified=True)
    assert marker.exists()


def test_flipped_byte_is_refused(tmp_path, trained):
    path = tmp_path / 'model.joblib'
    digest = bundle_mod.save_bundle(trained, path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match='sha256 is [0-9a-f]{64}, expected'):
        bundle_mod.load_bundle(path, expected_sha256=digest)


def payload_of(bundle, **changes):
    md = dict(bundle.metadata)
    payload = {'format': bundle_mod.FORMAT,
               'format_version': bundle_mod.FORMAT_VERSION,
               'metadata': md, 'model': bundle.model}
    for key, value in changes.items():
        if key.startswith('md_'):
            if value is None:
                del md[key[3:]]
            else:
                md[key[3:]] = value
        else:
            payload[key] = value
    return payload


@pytest.mark.parametrize('changes, reason', [
    (dict(md_feature_schema_version=feat.FEATURE_SCHEMA_VERSION + 1),
     'feature schema version 2'),
    (dict(md_feature_names=['cpu_last']), 'feature names differ'),
    (dict(md_threshold=None, md_window=None), "lacks \\['threshold', "
                                              "'window'\\]"),
    (dict(format='something-else'), 'not a watcher-failpredict-model'),
    (dict(format_version=99), 'format version 99'),
    (dict(metadata='nope'), 'metadata missing'),
    (dict(model=object()), 'object has no predict_proba'),
])
def test_incompatible_bundles_are_refused(tmp_path, trained, changes,
                                          reason):
    path = tmp_path / 'model.joblib'
    digest = write_payload(path, payload_of(trained, **changes))
    with pytest.raises(ModelError, match=reason) as err:
        bundle_mod.load_bundle(path, expected_sha256=digest)
    assert str(err.value).startswith(f'model bundle {path}: ')


def test_missing_unreadable_and_garbage_files(tmp_path):
    with pytest.raises(ModelError, match='no such file'):
        bundle_mod.load_bundle(tmp_path / 'absent.joblib')
    with pytest.raises(ModelError, match='cannot read it'):
        bundle_mod.load_bundle(tmp_path)          # a directory
    junk = tmp_path / 'junk.joblib'
    junk.write_bytes(b'not a pickle at all')
    with pytest.raises(ModelError, match='not a model bundle'):
        bundle_mod.load_bundle(junk, bundle_mod.file_sha256(junk))
    plain = tmp_path / 'list.pkl'
    plain.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ModelError, match='not a watcher-failpredict-model'):
        bundle_mod.load_bundle(plain, allow_unverified=True)


# -- everything the strategy relies on is validated at load (issue 14.6) ------

class NaNProbabilities(linear_model.LogisticRegression):
    """A fitted classifier whose probabilities are NaN."""

    def predict_proba(self, X):
        return np.full((len(X), 2), np.nan)


def fitted(estimator, n_features, classes=(0, 1)):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, n_features))
    y = np.resize(np.asarray(classes), 40)
    return estimator.fit(X, y)


def load_payload(path, payload):
    """load_bundle on ``payload`` written to ``path``, digest checked."""
    return bundle_mod.load_bundle(path, write_payload(path, payload))


@pytest.mark.parametrize('changes, reason', [
    # the three bad files
    (dict(model=fitted(linear_model.LogisticRegression(), 42)),
     "model expects 42 features, the bundle's feature set 'v1' gives 14"),
    (dict(model=fitted(linear_model.LogisticRegression(), 14, (0, 2))),
     r'model classes \[.*0.*2.*\] lack 1 \(failure\)'),
    (dict(md_window='abc'), "metadata window='abc' is not a finite number"),
    # metadata types and ranges
    (dict(md_window=float('nan')), 'window=nan is not a finite number'),
    (dict(md_window=5), 'window=5 is shorter than one 10 s step'),
    (dict(md_window=86400 * 30), r'window=2592000 is outside \(0, 86400\]'),
    (dict(md_threshold=0), r'threshold=0 is outside \(0, 100\]'),
    (dict(md_threshold=150.0), r'threshold=150.0 is outside \(0, 100\]'),
    (dict(md_threshold='90'), "threshold='90' is not a finite number"),
    (dict(md_period=-300), r'period=-300 is outside \(0, 86400\]'),
    (dict(md_horizon=float('inf')), 'horizon=inf is not a finite number'),
    (dict(md_granularity=2.5), 'granularity=2.5 is not a whole number'),
    (dict(md_granularity=True), 'granularity=True is not a finite number'),
    (dict(md_granularity=7200), r'granularity=7200 is outside \(0, 3600\]'),
    (dict(md_model_kind='random_forest'),
     "model_kind='random_forest' is not one of"),
    (dict(md_hosts_seen='a,b'), 'hosts_seen is not a list'),
    (dict(md_feature_set='v9'), "feature set 'v9': unknown feature set"),
    # the model object itself
    (dict(model=linear_model.LogisticRegression()),
     'model LogisticRegression is not fitted'),
    (dict(model=NaNProbabilities().fit(np.eye(14), [0, 1] * 7)),
     'smoke prediction: predict_proba gave .*nan'),
])
def test_unusable_bundles_are_refused_naming_the_problem(tmp_path, trained,
                                                         changes, reason):
    path = tmp_path / 'model.joblib'
    with pytest.raises(ModelError, match=reason) as err:
        load_payload(path, payload_of(trained, **changes))
    assert str(err.value).startswith(f'model bundle {path}: ')


@pytest.fixture(scope='module')
def trained_gbt():
    bundle, _ = training.train(synth.synthetic_windows(1600), window=300,
                               model_kind='gbt_peak', cycle=3600)
    return bundle


def test_multiscale_bundle_loads_and_its_params_are_checked(tmp_path,
                                                            trained_gbt):
    md = trained_gbt.metadata
    assert md['feature_set'] == 'multiscale' and trained_gbt.has_peak_model
    payload = payload_of(trained_gbt, peak_model=trained_gbt.peak_model)
    loaded = load_payload(tmp_path / 'ok.joblib', payload)
    assert loaded.metadata == md and loaded.has_peak_model
    n = len(md['feature_names'])
    params = md['feature_params']
    for change, reason in [
            (dict(window_steps=params['window_steps'] + 1),
             'window_steps=31 but window / granularity gives 30 steps'),
            (dict(lags=[1, 99]), r'lags=99 is not a whole number in '
                                 r'\[1, 30\]'),
            (dict(period_steps=0), 'period_steps=0'),
            (dict(cycle=-5.0), 'cycle=-5.0 is not a positive number')]:
        bad = payload_of(trained_gbt, peak_model=trained_gbt.peak_model,
                         md_feature_params=dict(params, **change))
        with pytest.raises(ModelError, match=reason):
            load_payload(tmp_path / 'bad.joblib', bad)
    # a peak regressor of another width
    narrow = payload_of(trained_gbt, peak_model=fitted(
        linear_model.LinearRegression(), n - 2, (0.0, 50.0, 100.0)))
    with pytest.raises(ModelError, match=f'peak model expects {n - 2} '
                                         f'features.*gives {n}'):
        load_payload(tmp_path / 'bad.joblib', narrow)
    # a peak regressor predicting NaN
    broken = fitted(linear_model.LinearRegression(), n, (0.0, 100.0))
    broken.intercept_ = np.nan
    with pytest.raises(ModelError, match='peak model gave .*not finite'):
        load_payload(tmp_path / 'bad.joblib', payload_of(
            trained_gbt, peak_model=broken))


def test_metadata_bounds_match_the_strategy():
    from watcher_failpredict.strategies import parameters
    from watcher_failpredict.strategies import predicted_least_failure as plf
    assert bundle_mod.MAX_WINDOW_STEPS == parameters.MAX_WINDOW_STEPS
    props = plf.PredictedLeastFailure.get_schema()['properties']
    assert bundle_mod.MAX_GRANULARITY == props['granularity']['maximum']
    assert bundle_mod.MAX_PERIOD == props['period']['maximum']
    assert bundle_mod.MAX_HORIZON == props['horizon']['maximum']


def test_unverified_load_is_an_explicit_opt_in_and_warns(tmp_path, trained,
                                                         caplog):
    path = tmp_path / 'model.joblib'
    bundle_mod.save_bundle(trained, path)
    with pytest.raises(ModelError) as err:
        bundle_mod.load_bundle(path)
    message = str(err.value)
    assert message.startswith(f'model bundle {path}: no sha256 to check it '
                              'against, and a model file is a pickle')
    for hint in (f'watcher-failpredict show-model {path}', 'model_sha256',
                 'allow_unverified_model = true', '--allow-unverified'):
        assert hint in message
    caplog.set_level('WARNING', logger=bundle_mod.LOG.name)
    for _ in range(2):
        loaded = bundle_mod.load_bundle(path, allow_unverified=True)
        assert loaded.metadata == trained.metadata
    warnings = [r for r in caplog.records if r.levelname == 'WARNING']
    assert len(warnings) == 2        # every load
    assert 'WITHOUT a sha256 check' in warnings[0].getMessage()
    assert str(path) in warnings[0].getMessage()
    # a digest given: verified, no warning
    caplog.clear()
    bundle_mod.load_bundle(path, bundle_mod.file_sha256(path))
    assert not [r for r in caplog.records if r.levelname == 'WARNING']
