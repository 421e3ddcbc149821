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

"""The sample configuration in etc/ is accepted by what consumes it.

Each sample is handed to the real program: the ``watcher.conf`` snippet to
oslo.config with the plugin's options (names, choices, types), the collectd
files to ``collectd -T`` (which loads and configures every plugin and reads
once; ``collectd -t`` of collectd 5.12 exits 0 even on a broken file), the
InfluxDB snippet to ``influxd config``.
"""

import configparser
import os
import re
import subprocess

from oslo_config import cfg
import pytest

from watcher_failpredict import conf as fp_conf
from watcher_failpredict.datasources.prometheus import (
    local_server as prom_local_server)

ETC = os.path.join(os.path.dirname(__file__), '..', '..', 'etc')
COLLECTD = '/usr/sbin/collectd'


def _etc(*parts):
    return os.path.abspath(os.path.join(ETC, *parts))


def _read(*parts):
    with open(_etc(*parts)) as f:
        return f.read()


def _collectd_T(tmp_path, text):
    """Run ``collectd -T`` on ``text``; its CompletedProcess."""
    path = tmp_path / 'collectd.conf'
    # Loopback only; one-second interval: -T waits one interval for the
    # virt plugin's reader.
    text = re.sub(r'^Interval .*$', 'Interval 1', text, flags=re.M)
    path.write_text(f'BaseDir "{tmp_path}"\nPIDFile "{tmp_path}/pid"\n'
                    + text)
    return subprocess.run([COLLECTD, '-T', '-C', str(path)],
                          capture_output=True, text=True, timeout=60)


def test_watcher_conf_snippet_sets_only_valid_plugin_options(tmp_path):
    text = _read('watcher.conf.snippet')
    parsed = configparser.ConfigParser(interpolation=None)
    parsed.read_string(text)
    assert parsed.sections() == ['failpredict']
    ((group, opts),) = fp_conf.list_opts()
    names = {o.name for o in opts}
    assert set(parsed['failpredict']) <= names
    # the commented-out suggestions name real options too
    commented = set(re.findall(r'^# ?(\w+) = ', text, flags=re.M))
    assert commented and commented <= names, commented - names
    conf_file = tmp_path / 'watcher.conf'
    conf_file.write_text(text)
    conf = cfg.ConfigOpts()
    fp_conf.register_opts(conf)
    conf(['--config-file', str(conf_file)], project='failpredict-test')
    for name in parsed['failpredict']:
        getattr(conf.failpredict, name)  # type/choice errors raise here
    assert conf.failpredict.cpu_form == 'percent'
    assert conf.failpredict.instance_metrics == 'guest'


def test_sample_config_lists_every_option():
    text = _read('watcher-failpredict.conf.sample')
    ((group, opts),) = fp_conf.list_opts()
    for opt in opts:
        assert re.search(rf'^#{opt.name} =', text, flags=re.M), opt.name


def test_collectd_compute_host_conf_is_accepted(tmp_path):
    proc = _collectd_T(tmp_path, _read('collectd', 'compute-host.conf'))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for plugin in ('cpu', 'memory', 'load', 'disk', 'interface',
                   'network'):
        assert f'plugin "{plugin}" successfully loaded' in proc.stdout + \
            proc.stderr, plugin


def test_collectd_virt_snippet_is_accepted_on_top_of_the_host_conf(
        tmp_path):
    virt = _read('collectd', 'compute-host-virt.conf')
    assert 'HostnameFormat uuid' in virt
    text = _read('collectd', 'compute-host.conf') + virt.replace(
        'qemu:///system', 'test:///default')  # libvirt's in-process fake
    proc = _collectd_T(tmp_path, text)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'plugin "virt" successfully loaded' in proc.stdout + proc.stderr


def test_collectd_write_prometheus_conf_is_accepted(tmp_path):
    text = _read('collectd', 'compute-host-prometheus.conf')
    assert 'HostnameFormat uuid' in text
    # loopback, a free port, libvirt's in-process fake
    text = text.replace('192.0.2.11', '127.0.0.1').replace(
        '"9103"', f'"{prom_local_server.free_port()}"').replace(
        'qemu:///system', 'test:///default')
    proc = _collectd_T(tmp_path, text)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for plugin in ('cpu', 'memory', 'load', 'disk', 'interface', 'virt',
                   'write_prometheus'):
        assert f'plugin "{plugin}" successfully loaded' in proc.stdout + \
            proc.stderr, plugin


def test_collectd_vnf_image_conf_is_accepted(tmp_path):
    text = _read('collectd', 'vnf-image.conf')
    assert 'Hostname "INSTANCE-UUID"' in text
    text = text.replace('INFLUXDB-ADDRESS', '127.0.0.1').replace(
        'INSTANCE-UUID', '3f1d2c4b-8a9e-4f60-b7a1-0c2d3e4f5a61')
    proc = _collectd_T(tmp_path, text)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_collectd_T_refuses_a_broken_file(tmp_path):
    # the check above can fail: a misspelt option is refused
    text = _read('collectd', 'compute-host.conf').replace(
        'ValuesPercentage true', 'ValuesPercent true', 1)
    assert _collectd_T(tmp_path, text).returncode != 0


@pytest.mark.parametrize('field, value', [
    ('typesdb', '"/usr/share/collectd/types.db"'),
    ('security-level', '"none"'),
    ('batch-timeout', '"1s"'),
    ('database', '"collectd"'),
])
def test_influxdb_collectd_input_is_accepted(tmp_path, field, value):
    snippet = _read('influxdb', 'collectd-input.conf')
    path = tmp_path / 'influxdb.conf'
    path.write_text('reporting-disabled = true\n' + snippet)
    proc = subprocess.run(['/usr/bin/influxd', 'config', '-config',
                           str(path)], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 0, proc.stderr
    block = proc.stdout.split('[[collectd]]', 1)[1].split('[[', 1)[0]
    assert re.search(rf'^\s*{re.escape(field)} = {re.escape(value)}$',
                     block, flags=re.M), block
    assert re.search(r'^\s*enabled = true$', block, flags=re.M)


def test_prometheus_scrape_config_is_accepted_and_sets_the_host_label(
        tmp_path):
    """promtool checks the sample; its jobs label hosts as the datasource
    reads them by default.
    """
    text = _read('prometheus', 'scrape-config.yml')
    path = tmp_path / 'prometheus.yml'
    path.write_text(text)
    proc = subprocess.run(['/usr/bin/promtool', 'check', 'config',
                           str(path)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    host_label = fp_conf.CONF.failpredict.prometheus_host_label
    assert re.search(rf'^\s+{host_label}: compute-1$', text, flags=re.M)
    for job in ('node', 'libvirt', 'collectd'):
        assert f'job_name: {job}' in text
