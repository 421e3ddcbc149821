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

"""The [failpredict] options and the sample config that documents them."""

import pathlib
import subprocess
import sys

from oslo_config import cfg
import pytest

from watcher_failpredict import conf

ROOT = pathlib.Path(__file__).resolve().parents[3]
SAMPLE = ROOT / 'etc' / 'watcher-failpredict.conf.sample'
GENERATOR_CONF = ROOT / 'etc' / 'oslo-config-generator' / \
    'watcher-failpredict.conf'


def test_sample_config_is_current(tmp_path):
    """etc/watcher-failpredict.conf.sample must be what the generator renders.

    Regenerate it with ``tox -e genconfig`` after changing an option.
    """
    out = tmp_path / 'sample.conf'
    subprocess.run(
        [sys.executable, '-m', 'oslo_config.generator',
         '--config-file', str(GENERATOR_CONF), '--output-file', str(out)],
        check=True, cwd=ROOT)
    assert out.read_text() == SAMPLE.read_text(), (
        'etc/watcher-failpredict.conf.sample is stale: run tox -e genconfig')


def test_password_is_secret_and_listed():
    opts = dict((o.name, o) for o in conf.list_opts()[0][1])
    assert opts['influxdb_password'].secret is True
    assert {'influxdb_url', 'influxdb_database', 'influxdb_username',
            'influxdb_verify_ssl', 'influxdb_ca_file', 'influxdb_timeout',
            'host_name_map', 'model_path', 'model_sha256'} <= set(opts)


def test_model_sha256_must_be_hex():
    c = cfg.ConfigOpts()
    conf.register_opts(c)
    c([], default_config_files=[])
    c.set_override('model_sha256', 'ab' * 32, group='failpredict')
    assert c.failpredict.model_sha256 == 'ab' * 32
    with pytest.raises(ValueError, match='not-a-digest'):
        c.set_override('model_sha256', 'not-a-digest', group='failpredict')
        c.failpredict.model_sha256


@pytest.mark.parametrize('value, expected', [
    ('1', 1.0), ('60', 60.0), ('1800', 1800.0), ('0.5', None),
    ('1801', None), ('nan', None), ('inf', None), ('soon', None)])
def test_metrics_read_deadline_is_bounded(tmp_path, value, expected):
    """Default 60 s; 1 to 1800 s from a config file, anything else refused
    naming the option when read (as Watcher's services do at start).
    """
    c = cfg.ConfigOpts()
    conf.register_opts(c)
    c([], default_config_files=[])
    assert c.failpredict.metrics_read_deadline == 60.0
    path = tmp_path / 'watcher.conf'
    path.write_text(f'[failpredict]\nmetrics_read_deadline = {value}\n')
    c = cfg.ConfigOpts()
    conf.register_opts(c)
    c(['--config-file', str(path)])
    if expected is None:
        with pytest.raises(cfg.ConfigFileValueError,
                           match='metrics_read_deadline'):
            c.failpredict.metrics_read_deadline
    else:
        assert c.failpredict.metrics_read_deadline == expected
