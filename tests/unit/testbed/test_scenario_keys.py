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

"""Scenario files a user can write: keys checked against the pattern's
kind, a trace's seconds per value distinct from the simulation step (the
old name still read, with a deprecation warning), ISO-8601 time columns,
level drift, and errors naming the file, the key path and what was
expected.
"""

import copy
import warnings

import numpy as np
import pytest
import yaml

from tests.unit.testbed.test_run import SHORT
from watcher_failpredict.testbed import cluster
from watcher_failpredict.testbed import loads
from watcher_failpredict.testbed import scenario


def _write(tmp_path, data, name='s.yaml'):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.parametrize('pattern,key,kind', [
    ({'kind': 'sine', 'base': 10, 'amplitude': 50, 'scale': 2}, 'scale',
     'sine'),
    ({'kind': 'trace', 'file': 'vms.csv', 'column': 'vm_1',
      'period': 600}, 'period', 'trace'),
    ({'kind': 'constant', 'base': 30, 'amplitude': 20}, 'amplitude',
     'constant'),
    ({'kind': 'sine', 'base': 10, 'duty': 0.3}, 'duty', 'sine'),
    ({'kind': 'square', 'base': 10, 'width': 0.3}, 'width', 'square'),
    ({'kind': 'sawtooth', 'base': 10, 'step': 20}, 'step', 'sawtooth'),
])
def test_a_key_that_does_not_apply_to_the_kind_is_refused(
        tmp_path, pattern, key, kind):
    (tmp_path / 'vms.csv').write_text('t_sec,vm_1\n0,10\n300,30\n')
    data = copy.deepcopy(SHORT)
    data['servers']['background'][1] = pattern
    path = _write(tmp_path, data)
    takes = ', '.join(scenario.KIND_KEYS[kind])
    with pytest.raises(scenario.ScenarioError) as err:
        scenario.load(path)
    assert str(err.value) == (
        f'scenario file {path}: servers.background[1].{key}: does not apply '
        f'to a {kind} pattern; a {kind} pattern takes {takes}')


def test_every_kind_has_its_keys_and_only_known_ones():
    assert set(scenario.KIND_KEYS) == set(loads.KINDS)
    for keys in scenario.KIND_KEYS.values():
        assert set(keys) <= set(scenario.PATTERN)
    assert 'seconds_per_value' in scenario.KIND_KEYS['trace']
    assert 'step' not in scenario.PATTERN


def _trace_scenario(tmp_path, **trace):
    (tmp_path / 'vms.csv').write_text(
        't_sec,vm_1,vm_2\n0,10,20\n300,30,40\n')
    data = copy.deepcopy(SHORT)
    data['servers']['background'] = [dict(
        {'kind': 'trace', 'file': 'vms.csv', 'columns': ['vm_1', 'vm_2'],
         'time_column': 't_sec'}, **trace)]
    return data


def test_seconds_per_value_replays_one_value_per_that_many_seconds(
        tmp_path):
    data = _trace_scenario(tmp_path, seconds_per_value=10)
    with warnings.catch_warnings():
        warnings.simplefilter('error')          # no deprecation here
        scn = scenario.validate(data, str(tmp_path))
    assert scn['step'] == 5.0                    # the simulation step
    assert scn['servers']['background'][0]['seconds_per_value'] == 10
    tb = cluster.Testbed(scn, 1, 'train')
    np.testing.assert_allclose(tb.bg[0, :6] * 100 / tb.cores,
                               [30, 30, 70, 70, 30, 30])


def test_old_step_key_is_read_with_a_deprecation_warning(tmp_path):
    data = _trace_scenario(tmp_path, step=10)
    path = _write(tmp_path, data)
    with pytest.warns(scenario.ScenarioDeprecationWarning,
                      match=rf'^{path}: servers\.background\[0\]\.step is '
                            rf'deprecated: write seconds_per_value'):
        scn = scenario.load(path)
    spec = scn['servers']['background'][0]
    assert spec['seconds_per_value'] == 10 and 'step' not in spec
    new = scenario.validate(_trace_scenario(tmp_path, seconds_per_value=10),
                            str(tmp_path))
    np.testing.assert_array_equal(cluster.Testbed(scn, 1, 'train').bg,
                                  cluster.Testbed(new, 1, 'train').bg)
    data['servers']['background'][0]['seconds_per_value'] = 10
    with pytest.raises(scenario.ScenarioError,
                       match=r'background\[0\]: step is the old name of '
                             r'seconds_per_value; give only '
                             r'seconds_per_value'):
        scenario.validate(data, str(tmp_path))


def test_iso_8601_time_column(tmp_path):
    (tmp_path / 'dated.csv').write_text(
        'when,cpu\n'
        '2013-07-01T00:00:00Z,10\n'
        '2013-07-01T00:05:00+00:00,20\n'
        # a missing 5-minute slot repeats the previous value
        '2013-07-01 00:15:00,40\n')
    values = loads.read_trace(str(tmp_path / 'dated.csv'), 'cpu',
                              time_column='when')
    np.testing.assert_allclose(values, [10, 20, 20, 40])
    (tmp_path / 'bad.csv').write_text('when,cpu\n2013-07-01,10\nlater,20\n')
    with pytest.raises(ValueError,
                       match=r"bad\.csv time column 'when' row 2: expected "
                             r"seconds or an ISO-8601 date-time .*got "
                             r"'later'"):
        loads.read_trace(str(tmp_path / 'bad.csv'), 'cpu',
                         time_column='when')
    (tmp_path / 'text.csv').write_text('t,cpu\n0,10\n300,high\n')
    data = copy.deepcopy(SHORT)
    data['servers']['background'] = [
        {'kind': 'trace', 'file': 'text.csv', 'column': 'cpu',
         'time_column': 't'}]
    path = _write(tmp_path, data)
    with pytest.raises(scenario.ScenarioError,
                       match=rf"^scenario file {path}: servers\.background"
                             rf"\[0\]: trace file .*text\.csv column 'cpu' "
                             rf"row 2: expected a number, got 'high'$"):
        scenario.load(path)


def test_drift_changes_the_level_of_the_test_stretch_only():
    base = scenario.validate(SHORT)
    assert base['drift'] == {'period_scale': 1.0, 'phase_shift': 0.0,
                             'scale': 1.0, 'offset': 0.0}
    data = copy.deepcopy(SHORT)
    for p in data['servers']['background']:
        p['noise'] = 0
    quiet = scenario.validate(data)
    data['drift'] = {'scale': 1.5, 'offset': 10}
    drifted = scenario.validate(data)
    before = cluster.Testbed(quiet, 2, 'test')
    after = cluster.Testbed(drifted, 2, 'test')
    cores = before.cores
    np.testing.assert_allclose(after.bg * 100 / cores,
                               before.bg * 100 / cores * 1.5 + 10)
    # training never drifts
    np.testing.assert_array_equal(cluster.Testbed(quiet, 2, 'train').bg,
                                  cluster.Testbed(drifted, 2, 'train').bg)
    data['drift'] = {'scale': -1}
    with pytest.raises(scenario.ScenarioError,
                       match=r'^drift\.scale: must be >= 0, got -1$'):
        scenario.validate(data)


def _set_rate_kind(data):
    data['chains']['rate']['kind'] = 'wave'


def _set_background_to_a_string(data):
    data['servers']['background'][0] = 'sine'


def _set_period_to_a_word(data):
    data['servers']['background'][0]['period'] = 'hourly'


@pytest.mark.parametrize('change,message', [
    (_set_rate_kind, "chains.rate.kind: unknown pattern 'wave'; expected "
                     "one of constant, sine, square, sawtooth, spikes, "
                     "trace"),
    (_set_background_to_a_string, 'servers.background[0]: must be a '
                                  'mapping (a pattern with kind), got str'),
    (_set_period_to_a_word, "servers.background[0].period: must be a "
                            "number, got 'hourly'"),
])
def test_errors_name_the_file_the_key_path_and_what_was_expected(
        tmp_path, change, message):
    data = copy.deepcopy(SHORT)
    change(data)
    path = _write(tmp_path, data)
    with pytest.raises(scenario.ScenarioError) as err:
        scenario.load(path)
    assert str(err.value) == f'scenario file {path}: {message}'
