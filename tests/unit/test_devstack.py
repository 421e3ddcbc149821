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

"""The devstack plugin: shellcheck-clean, and what it writes is valid.

devstack itself is not run here (it needs a whole cloud); instead
``devstack/settings`` and ``devstack/plugin.sh`` are sourced by a real bash
with devstack's functions (``iniset``, ``is_service_enabled``, ``sudo``, ...)
replaced by recorders, and the phases are run. What they write is then
checked by the real consumers: the ``[failpredict]`` section is parsed by
oslo.config with the plugin's own options (names, choices, types, the
sha256 pattern), the collectd configuration by ``collectd -t`` and the
InfluxDB configuration by ``influxd config``.
"""

import configparser
import os
import re
import shlex
import shutil
import subprocess
import time

import numpy as np
from oslo_config import cfg
import pytest

from watcher_failpredict import conf as fp_conf

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
PLUGIN = os.path.join(ROOT, 'devstack', 'plugin.sh')
SETTINGS = os.path.join(ROOT, 'devstack', 'settings')
SHA = 'ab' * 32

_STUBS = r"""
set -eu
DEST=/opt/stack
DATA_DIR=/opt/stack/data
SERVICE_HOST=127.0.0.1
STACK_USER=$(id -un)
LOG={tmp}/calls
ENABLED=" {enabled} "
function define_plugin {{ echo "define_plugin $*" >> "$LOG"; }}
function plugin_requires {{ echo "plugin_requires $*" >> "$LOG"; }}
function enable_service {{ echo "enable_service $*" >> "$LOG"; }}
function is_service_enabled {{
    local s
    for s in "$@"; do [[ "$ENABLED" == *" $s "* ]] && return 0; done
    return 1
}}
function install_package {{ echo "install_package $*" >> "$LOG"; }}
function setup_develop {{ echo "setup_develop $*" >> "$LOG"; }}
function restart_service {{ echo "restart_service $*" >> "$LOG"; }}
function die {{ echo "die $*" >&2; exit 1; }}
function sudo {{
    case "$1" in
        systemctl|install|usermod) echo "sudo $*" >> "$LOG" ;;
        *) "$@" ;;
    esac
}}
function iniset {{
    python3 - "$@" <<'PY'
import configparser, sys
path, section, key, value = sys.argv[1:5]
c = configparser.ConfigParser(interpolation=None)
c.read(path)
if not c.has_section(section):
    c.add_section(section)
c.set(section, key, value)
with open(path, 'w') as f:
    c.write(f)
PY
    echo "iniset $*" >> "$LOG"
}}
{pre_env}
source {settings}
{env}
source {plugin}
"""


def _run(tmp_path, body, enabled, env='', pre_env='', ok=True):
    """Run ``body`` after devstack's settings and plugin; ``pre_env`` is
    set before the settings are sourced (as local.conf's variables are),
    ``env`` after.
    """
    script = _STUBS.format(tmp=tmp_path, enabled=' '.join(enabled),
                           settings=SETTINGS, plugin=PLUGIN, env=env,
                           pre_env=pre_env) + body
    proc = subprocess.run(['bash', '-c', script], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path)
    if not ok:
        assert proc.returncode != 0, proc.stdout
        return proc.stderr
    assert proc.returncode == 0, proc.stderr + proc.stdout
    calls = tmp_path / 'calls'
    return calls.read_text().splitlines() if calls.exists() else []


def _plugin_option_names():
    ((group, opts),) = fp_conf.list_opts()
    assert group.name == 'failpredict'
    return {opt.name for opt in opts}


# -- static checks ------------------------------------------------------------


@pytest.mark.parametrize('path', [PLUGIN, SETTINGS])
def test_shellcheck_clean(path):
    shellcheck = shutil.which('shellcheck')
    if shellcheck is None:
        pytest.fail('shellcheck not found: tools/run-tests installs the '
                    'Debian package "shellcheck"')
    proc = subprocess.run([shellcheck, '-x', '-s', 'bash', path],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_iniset_option_is_a_plugin_option():
    with open(PLUGIN) as f:
        text = f.read()
    written = re.findall(r'\biniset\s+\S+\s+failpredict\s+(\w+)', text)
    assert len(written) >= 6
    unknown = set(written) - _plugin_option_names()
    assert not unknown, f'plugin.sh writes undefined options {unknown}'
    # and it writes nowhere else
    sections = set(re.findall(r'\biniset\s+\S+\s+(\S+)\s', text))
    assert sections == {'failpredict'}


# -- running the phases ------------------------------------------------------


def test_watcher_conf_written_is_valid_for_the_plugin(tmp_path):
    conf = tmp_path / 'watcher.conf'
    calls = _run(tmp_path, 'failpredict_main stack install\n'
                           'failpredict_main stack post-config\n',
                 ['watcher-decision-engine', 'watcher-applier'],
                 env=f'WATCHER_CONF={conf}\n'
                     f'FAILPREDICT_MODEL_SHA256={SHA}\n'
                     f'FAILPREDICT_INFLUXDB_HOST=127.0.0.2\n')
    assert 'setup_develop /opt/stack/watcher-failpredict' in calls
    # only Watcher's node role: no InfluxDB nor collectd here
    assert not [c for c in calls if c.startswith('install_package')]
    parsed = configparser.ConfigParser(interpolation=None)
    parsed.read(conf)
    assert parsed.sections() == ['failpredict']
    assert set(parsed['failpredict']) <= _plugin_option_names()

    opts = cfg.ConfigOpts()
    fp_conf.register_opts(opts)
    opts(['--config-file', str(conf)], project='failpredict-test')
    fp = opts.failpredict
    assert fp.influxdb_url == 'http://127.0.0.2:8086'
    assert fp.influxdb_database == 'collectd'
    assert fp.cpu_form == 'percent'
    assert fp.instance_metrics == 'virt'
    assert fp.record_risk is True
    assert fp.model_path == '/opt/stack/data/watcher-failpredict/model.joblib'
    assert fp.model_sha256 == SHA


def test_prometheus_backend_is_chosen_and_written_valid(tmp_path):
    conf = tmp_path / 'watcher.conf'
    _run(tmp_path, 'failpredict_main stack post-config\n',
         ['watcher-decision-engine'],
         env=f'WATCHER_CONF={conf}\n'
             f'FAILPREDICT_DATASOURCE=prometheus\n'
             f'FAILPREDICT_PROMETHEUS_URL=http://127.0.0.3:9090\n')
    opts = cfg.ConfigOpts()
    fp_conf.register_opts(opts)
    opts(['--config-file', str(conf)], project='failpredict-test')
    fp = opts.failpredict
    assert fp.datasource == 'prometheus'
    assert fp.prometheus_url == 'http://127.0.0.3:9090'
    assert fp.prometheus_host_label == 'fqdn'
    assert fp.prometheus_scrape_interval == 10.0
    # no InfluxDB on this node: nothing to record the risks into
    assert fp.record_risk is False
    # the default stays InfluxDB, with no Prometheus option written
    conf2 = tmp_path / 'watcher2.conf'
    _run(tmp_path, 'configure_watcher_failpredict\n',
         ['watcher-decision-engine', 'failpredict-influxdb'],
         env=f'WATCHER_CONF={conf2}\n')
    parsed = configparser.ConfigParser(interpolation=None)
    parsed.read(conf2)
    assert parsed['failpredict']['datasource'] == 'influxdb'
    assert not [k for k in parsed['failpredict'] if k.startswith('prom')]


def test_bad_setting_is_caught_by_the_option_types(tmp_path):
    conf = tmp_path / 'watcher.conf'
    _run(tmp_path, 'failpredict_main stack post-config\n',
         ['watcher-api'], env=f'WATCHER_CONF={conf}\n'
                              f'FAILPREDICT_INSTANCE_METRICS=libvirt\n')
    parsed = configparser.ConfigParser(interpolation=None)
    parsed.read(conf)
    assert 'model_sha256' not in parsed['failpredict']  # not given
    opts = cfg.ConfigOpts()
    fp_conf.register_opts(opts)
    opts(['--config-file', str(conf)], project='failpredict-test')
    with pytest.raises(ValueError, match='libvirt'):
        opts.failpredict.instance_metrics


def test_extra_phase_restarts_only_enabled_watcher_services(tmp_path):
    calls = _run(tmp_path, 'failpredict_main stack extra\n',
                 ['watcher-api', 'watcher-decision-engine'])
    assert [c for c in calls if c.startswith('restart_service')] == [
        'restart_service devstack@watcher-api',
        'restart_service devstack@watcher-decision-engine']


def test_collectd_conf_written_is_accepted_by_collectd(tmp_path):
    target = tmp_path / 'collectd.conf'
    calls = _run(tmp_path, 'configure_failpredict_collectd\n',
                 ['failpredict-collectd', 'n-cpu'],
                 env=f'FAILPREDICT_COLLECTD_CONF={target}\n'
                     f'FAILPREDICT_INFLUXDB_HOST=127.0.0.2\n'
                     f'FAILPREDICT_LIBVIRT_URI=test:///default\n'
                     # -T waits one interval for the virt reader
                     f'FAILPREDICT_COLLECTD_INTERVAL=1\n')
    text = target.read_text()
    host = subprocess.run(['hostname'], capture_output=True,
                          text=True).stdout.strip()
    assert f'Hostname "{host}"' in text
    assert 'Server "127.0.0.2" "25826"' in text
    assert 'LoadPlugin virt' in text and 'HostnameFormat uuid' in text
    assert 'Connection "test:///default"' in text
    assert 'define_plugin watcher-failpredict' in calls
    assert 'plugin_requires watcher-failpredict watcher' in calls
    assert 'Interval 1\n' in text
    # configure_failpredict_collectd ran "collectd -T" on it (a refusal
    # dies); and -T does refuse a broken file ("collectd -t" would not):
    target.write_text(text.replace('ReportByCpu false', 'ReportByCPUs false'))
    proc = subprocess.run(['/usr/sbin/collectd', '-T', '-C', str(target)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0


def test_collectd_without_nova_compute_has_no_virt_plugin(tmp_path):
    target = tmp_path / 'collectd.conf'
    _run(tmp_path, 'configure_failpredict_collectd\n',
         ['failpredict-collectd'],
         env=f'FAILPREDICT_COLLECTD_CONF={target}\n')
    assert 'virt' not in target.read_text()


def test_influxdb_collectd_input_appended_once_and_valid(tmp_path):
    target = tmp_path / 'influxdb.conf'
    target.write_text('reporting-disabled = true\n')
    _run(tmp_path, 'configure_failpredict_influxdb\n'
                   'configure_failpredict_influxdb\n',
         ['failpredict-influxdb'],
         env=f'FAILPREDICT_INFLUXDB_CONF={target}\n'
             f'FAILPREDICT_INFLUXDB_HOST=127.0.0.2\n')
    text = target.read_text()
    assert text.count('[[collectd]]') == 1
    assert 'bind-address = "127.0.0.2:25826"' in text
    proc = subprocess.run(['/usr/bin/influxd', 'config', '-config',
                           str(target)], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 0, proc.stderr
    shown = proc.stdout
    assert re.search(r'\[\[collectd\]\]\s+enabled = true\s+'
                     r'bind-address = "127\.0\.0\.2:25826"', shown), shown
    assert 'security-level = "none"' in shown


# -- Prometheus and node_exporter installed by the plugin -------------------


def _defaults_args(path):
    """The ARGS of a Debian /etc/default file, as a list."""
    text = path.read_text()
    (line,) = [ln for ln in text.splitlines() if ln.startswith('ARGS=')]
    return shlex.split(line[len('ARGS='):])[0].split()


def test_prometheus_without_url_is_installed_and_scrapes_node_exporter(
        tmp_path):
    """FAILPREDICT_DATASOURCE=prometheus and no URL: the plugin installs
    Prometheus and node_exporter, and what it writes works: a real
    prometheus with its configuration and arguments scrapes a real
    node_exporter with its arguments, and the datasource at the
    prometheus_url it wrote into watcher.conf reads this node by its
    hostname.
    """
    from watcher_failpredict.datasources import prometheus
    from watcher_failpredict.datasources.prometheus import local_server
    from watcher_failpredict.datasources import windows as w
    prom_port = local_server.free_port()
    exp_port = local_server.free_port()
    virt_port = local_server.free_port()
    ldef = tmp_path / 'default-libvirt-exporter'
    conf = tmp_path / 'watcher.conf'
    pconf = tmp_path / 'prometheus.yml'
    pdef = tmp_path / 'default-prometheus'
    ndef = tmp_path / 'default-node-exporter'
    pre_env = (f'FAILPREDICT_DATASOURCE=prometheus\n'
               f'FAILPREDICT_PROMETHEUS_PORT={prom_port}\n'
               f'FAILPREDICT_NODE_EXPORTER_PORT={exp_port}\n'
               f'FAILPREDICT_LIBVIRT_EXPORTER_PORT={virt_port}\n'
               f'FAILPREDICT_LIBVIRT_URI=test:///default\n'
               f'FAILPREDICT_PROMETHEUS_SCRAPE_INTERVAL=1\n')
    env = (f'WATCHER_CONF={conf}\nFAILPREDICT_PROMETHEUS_CONF={pconf}\n'
           f'FAILPREDICT_PROMETHEUS_DEFAULTS={pdef}\n'
           f'FAILPREDICT_NODE_EXPORTER_DEFAULTS={ndef}\n'
           f'FAILPREDICT_LIBVIRT_EXPORTER_DEFAULTS={ldef}\n')
    enabled = ['watcher-decision-engine', 'n-cpu', 'failpredict-prometheus',
               'failpredict-node-exporter']
    calls = _run(tmp_path, 'failpredict_main stack install\n'
                           'configure_failpredict_node_exporter\n'
                           'configure_failpredict_prometheus\n'
                           'configure_watcher_failpredict\n',
                 enabled, env=env, pre_env=pre_env)
    assert 'enable_service failpredict-prometheus ' \
           'failpredict-node-exporter' in calls
    assert 'install_package prometheus' in calls
    assert 'install_package prometheus-node-exporter ' \
           'prometheus-libvirt-exporter' in calls
    opts = cfg.ConfigOpts()
    fp_conf.register_opts(opts)
    opts(['--config-file', str(conf)], project='failpredict-test')
    url = opts.failpredict.prometheus_url
    assert url == f'http://127.0.0.1:{prom_port}'
    host = subprocess.run(['hostname'], capture_output=True,
                          text=True).stdout.strip()
    assert f"fqdn: '{host}'" in pconf.read_text()

    data = tmp_path / 'data'
    procs = [subprocess.Popen(
        [exporter] + _defaults_args(defaults),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for exporter, defaults in (
            ('/usr/bin/prometheus-node-exporter', ndef),
            ('/usr/bin/prometheus-libvirt-exporter', ldef))]
    try:
        procs.append(subprocess.Popen(
            ['/usr/bin/prometheus', f'--config.file={pconf}',
             f'--storage.tsdb.path={data}'] + _defaults_args(pdef),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        ds = prometheus.PrometheusDataSource(url=url, scrape_interval=1,
                                             retries=0)
        deadline = time.monotonic() + 30
        while True:
            try:
                win = ds.cluster_windows(w.COMPUTE_NODE, (host,), 4, 2,
                                         metrics=('memory', 'load'),
                                         end=time.time() - 2)
                mem = win.series('memory', host)[-2]
            except w.MetricsUnavailable as exc:   # not up / scraped yet
                mem = exc
            if isinstance(mem, float) and not np.isnan(mem):
                break
            assert time.monotonic() < deadline, mem
            ds.reset_caches()
            time.sleep(0.5)
        assert 0 < mem < 100
        # the libvirt exporter's instance (libvirt's fake test:///default
        # domain, whose CPU time is the wall clock: 100 % of one vCPU)
        uuid = '6695eb01-f6a4-8304-79aa-97f2502e193f'
        while True:
            try:
                # three complete windows: the first after the start may
                # hold one sample, which rate() extrapolates
                win = ds.cluster_windows(w.INSTANCE, (uuid,), 10, 2,
                                         metrics=('cpu',),
                                         end=time.time() - 2)
                cpu = win.series('cpu', uuid)[-4:-1]
            except w.MetricsUnavailable as exc:   # not scraped yet
                cpu = exc
            if not isinstance(cpu, Exception) and not np.isnan(cpu).any():
                break
            assert time.monotonic() < deadline + 30, cpu
            ds.reset_caches()
            time.sleep(0.5)
        assert np.median(cpu) == pytest.approx(100.0, abs=15)
        # start waits for /-/ready, which now answers
        calls = _run(tmp_path, 'start_failpredict_prometheus\n', enabled,
                     env=env, pre_env=pre_env)
        assert 'sudo systemctl restart prometheus' in calls
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


def test_prometheus_at_a_given_url_is_not_installed(tmp_path):
    calls = _run(tmp_path, 'failpredict_main stack install\n',
                 ['watcher-decision-engine', 'n-cpu'],
                 pre_env='FAILPREDICT_DATASOURCE=prometheus\n'
                         'FAILPREDICT_PROMETHEUS_URL=http://127.0.0.3:9090\n')
    assert not [c for c in calls if 'prometheus' in c]
    # the default backend installs neither
    calls = _run(tmp_path, 'true\n', ['watcher-decision-engine'])
    assert not [c for c in calls if 'prometheus' in c]


def test_a_bad_node_list_is_refused(tmp_path):
    err = _run(tmp_path, 'configure_failpredict_prometheus\n',
               ['failpredict-prometheus'],
               env=f'FAILPREDICT_PROMETHEUS_CONF={tmp_path}/p.yml\n'
                   'FAILPREDICT_PROMETHEUS_NODES="compute-1:9100"\n',
               ok=False)
    assert "'compute-1:9100' is not HOSTNAME=ADDRESS:PORT" in err
