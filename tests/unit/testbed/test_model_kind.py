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

"""The scenario key ``model.kind`` picks the proposed policy's model."""

import copy

import pytest

from tests.unit.testbed import test_run as base
from watcher_failpredict.prediction import models
from watcher_failpredict.testbed import policies
from watcher_failpredict.testbed import runner
from watcher_failpredict.testbed import scenario
from watcher_failpredict.tracesets import catalog

ALIBABA = catalog.get('alibaba')


def test_model_kind_defaults_to_the_train_command_default():
    scn = scenario.validate(base.SHORT)
    assert scn['model']['kind'] == 'gbt_peak'
    assert policies.model_metadata(scn)['model_kind'] == 'gbt_peak'


@pytest.mark.parametrize('name,kind', [
    ('paper', 'gbt_peak'), ('paper-drift', 'gbt_peak'),
    pytest.param('alibaba', 'gbt_peak', marks=pytest.mark.skipif(
        bool(catalog.missing_files(ALIBABA)),
        reason='research-only Alibaba trace absent; '
               f'{catalog.fetch_instruction(ALIBABA.folder)}')),
    ('azure', 'gbt_peak'), ('azure-balanced', 'gbt_peak'),
    # the version 1 scenarios keep the model their results were measured
    # with
    ('paper-v1', 'svm'), ('paper-drift-v1', 'svm')])
def test_built_in_scenarios_model_kind(name, kind):
    assert scenario.load(name)['model']['kind'] == kind


def test_research_only_scenario_says_how_to_fetch_its_trace(tmp_path):
    with pytest.raises(scenario.ScenarioError,
                       match=r'alibaba\.yaml: servers\.background\[0\]\.file: '
                             r'traces:alibaba2018_machines/'
                             r'machine_usage_5min\.csv: .*not found in the '
                             r'traces directory .* \(from --traces\); fetch '
                             r'it with: watcher-failpredict traces fetch '
                             r'alibaba \(licence: research or study use'):
        scenario.load('alibaba', traces=str(tmp_path))


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
