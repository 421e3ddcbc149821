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

"""No credential in a log: [failpredict] options (issue 14 point 7, the
configuration part).
"""

import logging
import re
import socket

from oslo_config import cfg
from oslo_config import fixture as cfg_fixture
import pytest

from tests.unit.strategies.test_strategy import _simple as failing_cluster
from watcher_failpredict import conf
from watcher_failpredict.strategies import errors

PASSWORD = 'S3cret-pw'
CREDENTIAL_URLS = [
    f'http://reader:{PASSWORD}@127.0.0.1:8086',
    f'https://:{PASSWORD}@influx.example.org',
    f'http://reader:{PASSWORD}%40x@127.0.0.1:8086',
    f'http://{PASSWORD}@127.0.0.1:8086',          # a token as the user
    f'http://reader:{PASSWORD}@[::1:8086',       # not even a valid URL
    f'ftp://reader:{PASSWORD}@127.0.0.1',        # nor an allowed scheme
]


def _load(tmp_path, **values):
    """A ConfigOpts with [failpredict] read from a file, as at start-up."""
    path = tmp_path / 'watcher.conf'
    path.write_text('[failpredict]\n' + ''.join(
        f'{k} = {v}\n' for k, v in values.items()))
    opts = cfg.ConfigOpts()
    conf.register_opts(opts)
    opts(['--config-file', str(path)], default_config_files=[])
    return opts


def _dump(opts):
    """What a Watcher service logs at start, every option at DEBUG, and the
    error that stopped it (None when it started).
    """
    records = []
    handler = logging.Handler(level=logging.DEBUG)
    handler.emit = lambda record: records.append(record.getMessage())
    logger = logging.getLogger('test_config_secrets.dump')
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    error = None
    try:
        opts.log_opt_values(logger, logging.DEBUG)
    except cfg.ConfigFileValueError as exc:
        error = exc
    finally:
        logger.removeHandler(handler)
    return '\n'.join(records), error


def test_options_that_can_carry_a_credential_are_secret():
    opts = {o.name: o for o in conf.list_opts()[0][1]}
    carriers = {name for name in opts if any(
        word in name for word in ('password', 'secret', 'token',
                                  'credential'))}
    assert carriers == {'influxdb_password'}
    assert all(opts[name].secret for name in carriers)
    # the URL cannot carry one: it refuses them instead
    assert isinstance(opts['influxdb_url'].type, conf.URLWithoutCredentials)


@pytest.mark.parametrize('url', CREDENTIAL_URLS)
def test_url_with_credentials_is_refused_without_repeating_it(url, tmp_path):
    opts = _load(tmp_path, influxdb_url=url)
    with pytest.raises(cfg.ConfigFileValueError) as err:
        opts.failpredict.influxdb_url
    message = str(err.value)
    assert 'influxdb_url' in message
    assert 'the URL embeds credentials (user:password@host); remove them ' \
        'and set influxdb_username and influxdb_password' in message
    assert PASSWORD not in message


@pytest.mark.parametrize('url', ['http://127.0.0.1:8086',
                                 'https://influx.example.org:8086/x?y=a@b'])
def test_url_without_credentials_is_accepted(url, tmp_path):
    assert _load(tmp_path, influxdb_url=url).failpredict.influxdb_url == url


def test_debug_option_dump_masks_the_password(tmp_path):
    opts = _load(tmp_path, influxdb_url='http://127.0.0.1:8086',
                 influxdb_username='reader', influxdb_password=PASSWORD)
    text, error = _dump(opts)
    assert error is None
    assert re.search(r'failpredict\.influxdb_password +=  ?\*{4}$', text,
                     re.M)
    assert re.search(
        r'failpredict\.influxdb_url +=  ?http://127\.0\.0\.1:8086$', text,
        re.M)
    assert PASSWORD not in text


def test_service_start_with_a_credential_url_stops_without_showing_it(
        tmp_path):
    """log_opt_values reads every option: the service refuses to start, and
    neither the lines logged before nor the error show the password.
    """
    text, error = _dump(_load(tmp_path, influxdb_url=CREDENTIAL_URLS[0]))
    assert 'the URL embeds credentials' in str(error)
    assert 'failpredict.influxdb_database' in text   # the dump had started
    assert PASSWORD not in text + str(error)


@pytest.fixture
def global_conf():
    fixture = cfg_fixture.Config(conf.CONF)
    fixture.setUp()
    yield fixture
    fixture.cleanUp()


def _failing_cluster_strategy():
    strategy = failing_cluster().strategy()
    strategy.datasource_backend = None   # the InfluxDB one, from the conf
    return strategy


def test_strategy_fails_on_a_credential_url_without_logging_it(
        global_conf, caplog):
    global_conf.load_raw_values(group='failpredict',
                                influxdb_url=CREDENTIAL_URLS[0])
    strategy = _failing_cluster_strategy()
    with caplog.at_level(logging.DEBUG), \
            pytest.raises(errors.MetricsReadFailed) as err:
        strategy.execute()
    assert 'influxdb_url' in str(err.value)
    assert 'embeds credentials' in str(err.value)
    assert PASSWORD not in caplog.text + str(err.value)


def test_strategy_logs_never_show_the_password(global_conf, caplog):
    """An InfluxDB that is not there, reached with a password: the failure
    names the server, never the password, at any log level.
    """
    with socket.socket() as sock:     # a loopback port nobody listens on
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    global_conf.config(group='failpredict',
                       influxdb_url=f'http://127.0.0.1:{port}',
                       influxdb_username='reader',
                       influxdb_password=PASSWORD, influxdb_retries=0,
                       influxdb_timeout=2)
    strategy = _failing_cluster_strategy()
    with caplog.at_level(logging.DEBUG), \
            pytest.raises(errors.MetricsReadFailed) as err:
        strategy.execute()
    assert f'127.0.0.1:{port}' in str(err.value)
    assert PASSWORD not in caplog.text + str(err.value)
