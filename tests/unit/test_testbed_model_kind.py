"""The scenario key ``model.kind`` picks the proposed policy's model."""

import copy

import pytest

from tests.unit import test_testbed_run as base
from watcher_failpredict.prediction import models
from watcher_failpredict.testbed import policies
from watcher_failpredict.testbed import runner
from watcher_failpredict.testbed import scenario


def test_model_kind_defaults_to_the_train_command_default():
    scn = scenario.validate(base.SHORT)
    assert scn['model']['kind'] == 'gbt_peak'
    assert policies.model_metadata(scn)['model_kind'] == 'gbt_peak'


@pytest.mark.parametrize('name,kind', [
    ('paper', 'gbt_peak'), ('paper-drift', 'gbt_peak'),
    ('alibaba', 'gbt_peak'), ('azure', 'gbt_peak'),
    # the version 1 scenarios keep the model their results were measured
    # with
    ('paper-v1', 'svm'), ('paper-drift-v1', 'svm')])
def test_built_in_scenarios_model_kind(name, kind):
    assert scenario.load(name)['model']['kind'] == kind


def test_unknown_model_kind_is_refused_with_the_known_ones():
    data = copy.deepcopy(base.SHORT)
    data['model'] = {'kind': 'lstm'}
    with pytest.raises(scenario.ScenarioError,
                       match=r"model\.kind: unknown model kind 'lstm'; "
                             r"known: svm"):
        scenario.validate(data)
    data['model'] = {'kind': 'fixed_hosts'}
    with pytest.raises(scenario.ScenarioError,
                       match=r"model\.kind: 'fixed_hosts' cannot drive the "
                             r"strategy .*use one of svm, svm_nystroem, gbt, "
                             r"gbt_peak"):
        scenario.validate(data)
    data['model'] = {'kind': 3}
    with pytest.raises(scenario.ScenarioError, match=r'model\.kind: must be'):
        scenario.validate(data)


def test_model_kind_reaches_training_and_the_strategy():
    assert 'gbt' in models.MODEL_KINDS
    data = copy.deepcopy(base.SHORT)
    data['model'] = {'kind': 'gbt'}
    scn = scenario.validate(data)
    bundle, evaluation = runner.train_model(scn, 3, stretch='fit')
    assert bundle.metadata['model_kind'] == 'gbt'
    assert policies.model_metadata(scn)['model_kind'] == 'gbt'
    assert evaluation['n_train'] > 0
