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

"""The development protocol: ``evaluate --stretch validation`` fits the
model on the first part of the training stretch, runs the policies on the
rest, and never simulates a second of the test stretch.
"""

import io
import json

import numpy as np
import pytest

from tests.unit.testbed import test_run as base
from watcher_failpredict.cmd import main as cli
from watcher_failpredict.testbed import cluster
from watcher_failpredict.testbed import loads
from watcher_failpredict.testbed import runner
from watcher_failpredict.testbed import scenario


@pytest.fixture(scope='module')
def short():
    return scenario.validate(base.SHORT)


def test_fit_and_validation_split_the_training_stretch(short):
    train = cluster.Testbed(short, 5, 'train')
    fit = cluster.Testbed(short, 5, 'fit')
    val = cluster.Testbed(short, 5, 'validation')
    assert fit.n_steps + val.n_steps == train.n_steps
    # 2/3 of 3600 s = 2400 s, a whole number of 60 s decisions
    assert fit.n_steps * fit.dt == 2400.0
    assert val.offset == 2400.0
    # the same load and noise as the training stretch, cut in two
    np.testing.assert_array_equal(fit.bg, train.bg[:, :fit.n_steps])
    np.testing.assert_array_equal(val.bg, train.bg[:, fit.n_steps:])
    np.testing.assert_array_equal(val.rate, train.rate[:, fit.n_steps:])
    assert val.t_abs[0] == 2400.0 and val.t_abs[-1] < 3600.0


def test_unknown_stretch_is_refused(short):
    with pytest.raises(ValueError, match='stretch must be one of'):
        cluster.Testbed(short, 1, 'holdout')
    with pytest.raises(ValueError, match='stretch must be test or valid'):
        runner.evaluate(short, ['no-mig'], stretch='fit')


def test_validation_run_never_touches_the_test_stretch(short, monkeypatch):
    built = []
    real = cluster.Testbed.__init__

    def spy(self, scn, seed, stretch='test'):
        real(self, scn, seed, stretch)
        built.append((stretch, self.t_abs.min(), self.t_abs.max()))

    monkeypatch.setattr(cluster.Testbed, '__init__', spy)
    load_times = []
    real_pattern = loads.pattern

    def pattern_spy(spec, t, *args, **kwargs):
        load_times.append(float(np.max(t)))
        return real_pattern(spec, t, *args, **kwargs)

    monkeypatch.setattr(loads, 'pattern', pattern_spy)
    res = runner.evaluate(short, ['no-mig', 'least-cpu', 'proposed'],
                          stretch='validation')
    stretches = [b[0] for b in built]
    assert 'test' not in stretches and 'train' not in stretches
    assert stretches.count('fit') == 1 and 'validation' in stretches
    for _, lo, hi in built:
        assert 0.0 <= lo and hi < short['train_duration']
    # no load (background or request rate) was even generated for a time
    # of the test stretch
    assert load_times and max(load_times) < short['train_duration']
    # the model saw only the fit part (2400 s), the policies the rest
    tb = res['runs']['least-cpu']
    assert tb.stretch == 'validation' and tb.n_steps * tb.dt == 1200.0
    assert res['evaluations'][0]['n_train'] > 0
    assert res['per_seed']['least-cpu'][0]['audits'] > 0


def test_evaluate_command_stretch_validation(tmp_path):
    import yaml
    path = tmp_path / 'short.yaml'
    path.write_text(yaml.safe_dump(base.SHORT))
    out, err = io.StringIO(), io.StringIO()
    out_json = tmp_path / 'v.json'
    rc = cli.main(['evaluate', '--scenario', str(path), '--policies',
                   'no-mig', '--stretch', 'validation', '--json',
                   str(out_json)], stdout=out, stderr=err)
    assert rc == 0, err.getvalue()
    assert 'VALIDATION stretch' in out.getvalue()
    assert 'no-mig' in out.getvalue()
    assert json.loads(out_json.read_text())['stretch'] == 'validation'
    rc = cli.main(['evaluate', '--scenario', str(path), '--policies',
                   'no-mig', '--stretch', 'test', '--json', str(out_json)],
                  stdout=io.StringIO(), stderr=err)
    assert rc == 0 and json.loads(out_json.read_text())['stretch'] == 'test'
