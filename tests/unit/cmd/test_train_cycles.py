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

"""``train --model-kind gbt_peak_cycle`` says which load cycles it found."""

from tests.unit.cmd.test_train_guards import run
from tests.unit.cmd.test_train_guards import SMALL_TRACE
from watcher_failpredict.cmd import train as train_cmd
from watcher_failpredict.prediction import bundle as bundle_mod


def test_a_cyclic_model_from_a_trace_keeps_its_declared_cycle(tmp_path):
    out = tmp_path / 'm.joblib'
    rc, stdout, stderr = run('train', *SMALL_TRACE, '--model-kind',
                             'gbt_peak_cycle', '--out', str(out))
    assert rc == 0, stderr
    # the synthetic trace declares its one-hour cycle
    assert 'load cycle: 3600 s, declared for every host' in stdout
    assert 'WARNING' not in stderr
    digest = stdout.split('sha256 ')[1].split()[0]
    md = bundle_mod.load_bundle(str(out), digest).metadata
    assert md['model_kind'] == 'gbt_peak_cycle'
    assert md['feature_params']['cycle'] == 3600.0


def test_hosts_without_a_cycle_are_named_with_what_to_do():
    line, warning = train_cmd.cycles_summary(
        {'cycle': None, 'host_cycles': {'a': 1500.0, 'b': 0.0, 'c': 2400.0,
                                        'd': 0.0}}, 86400.0)
    assert line == 'load cycles found for 2 of 4 hosts (1500 to 2400 s)'
    assert warning.startswith('WARNING: no load cycle found for 2 host(s) '
                              '(b, d) in 86400 s of history')
    assert '--cycle' in warning and '--since' in warning
    line, warning = train_cmd.cycles_summary(
        {'cycle': None, 'host_cycles': {'a': 900.0}}, 7200.0)
    assert (line, warning) == ('load cycles found for 1 of 1 hosts (900 to '
                               '900 s)', None)
