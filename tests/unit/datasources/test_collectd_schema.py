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

"""collectd_schema renders what real collectd + InfluxDB store.

The reference is the real thing: collectd 5.12 (Debian package ``collectd``)
sends to a real influxd's native collectd input over UDP on loopback, and the
measurement/tag shapes it produces are compared with ours.
"""

import json
import os
import subprocess
import tempfile
import time

import numpy as np
import pytest

from watcher_failpredict.datasources import collectd_schema as cs
from watcher_failpredict.datasources import influxdb as idb
from watcher_failpredict.datasources.influxdb import local_server
from watcher_failpredict.datasources import windows as metric_windows

COLLECTD = '/usr/sbin/collectd'

_CONF = """\
Hostname "{host}"
FQDNLookup false
Interval 1
BaseDir "{dir}"
PIDFile "{dir}/collectd.pid"
TypesDB "/usr/share/collectd/types.db"
LoadPlugin cpu
<Plugin cpu>
{cpu}
</Plugin>
LoadPlugin memory
<Plugin memory>
  ValuesAbsolute true
  ValuesPercentage true
</Plugin>
LoadPlugin load
LoadPlugin interface
LoadPlugin disk
LoadPlugin network
<Plugin network>
  Server "127.0.0.1" "{port}"
</Plugin>
"""

_FORMS = {
    'percent': ('real-percent', '  ReportByCpu false\n  ReportByState true\n'
                                '  ValuesPercentage true'),
    'jiffies': ('real-jiffies', '  ReportByCpu true\n  ReportByState true'),
}


def _shapes(server, db, host):
    """{(measurement, tag keys, type): set of type_instances} of host."""
    out = {}
    measurements = json.loads(server.query('SHOW MEASUREMENTS', db))
    for (name,) in measurements['results'][0]['series'][0]['values']:
        body = json.loads(server.query(
            f'SELECT * FROM "{name}" WHERE "host" = \'{host}\' '
            f'GROUP BY * LIMIT 1', db))
        for s in body['results'][0].get('series', []):
            tags = {k: v for k, v in s['tags'].items() if v}
            key = (name, tuple(sorted(tags)), tags.get('type'))
            out.setdefault(key, set()).add(tags.get('type_instance'))
    return out


def _shape_of_lines(lines):
    out = {}
    for line in lines:
        head = line.split(' ')[0].split(',')
        tags = dict(kv.split('=', 1) for kv in head[1:])
        key = (head[0], tuple(sorted(tags)), tags.get('type'))
        out.setdefault(key, set()).add(tags.get('type_instance'))
    return out


def _samples(server, host):
    """Fewest points any of host's CPU-idle/disk/interface series has."""
    counts = []
    for meas, extra in (('cpu_value', ' AND "type_instance" = \'idle\''),
                        ('disk_read', ' AND "type" = \'disk_octets\''),
                        ('interface_rx', ' AND "type" = \'if_octets\'')):
        body = json.loads(server.query(
            f'SELECT count("value") FROM "{meas}" WHERE "host" = '
            f'\'{host}\'{extra} GROUP BY "instance"', 'collectd'))
        series = body['results'][0].get('series', [])
        if not series:
            return 0
        counts += [s['values'][0][1] for s in series]
    return min(counts)


@pytest.fixture(scope='module')
def real_collectd():
    if not os.path.exists(COLLECTD):
        pytest.fail(f'{COLLECTD} not found: run the test command from '
                    f'README.rst, which installs the Debian package '
                    f'"collectd"')
    server = local_server.InfluxDBServer(collectd=True).start()
    procs = []
    tmp = tempfile.mkdtemp(prefix='failpredict-collectd-')
    try:
        for form, (host, cpu) in _FORMS.items():
            conf = os.path.join(tmp, f'{form}.conf')
            os.makedirs(os.path.join(tmp, form), exist_ok=True)
            with open(conf, 'w') as f:
                f.write(_CONF.format(host=host, cpu=cpu,
                                     dir=os.path.join(tmp, form),
                                     port=server.collectd_port))
            procs.append(subprocess.Popen(
                [COLLECTD, '-f', '-C', conf], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL))
        # 1 s interval, 1 s batch timeout; rates need 3 samples of each.
        deadline = time.monotonic() + 30
        while not all(_samples(server, host) >= 3
                      for host, _cpu in _FORMS.values()):
            assert time.monotonic() < deadline, 'no collectd data in 30 s'
            time.sleep(0.5)
        for proc in procs:
            assert proc.poll() is None, 'collectd exited early'
        yield server
    finally:
        for proc in procs:
            # collectd lingers ~10 s on SIGTERM; its state is disposable.
            proc.kill()
            proc.wait(10)
        server.stop()
        subprocess.run(['rm', '-rf', tmp], check=False)


@pytest.mark.parametrize('form', ['percent', 'jiffies'])
def test_our_points_have_real_collectds_shapes(real_collectd, form):
    host = _FORMS[form][0]
    real = _shapes(real_collectd, 'collectd', host)
    ours = _shape_of_lines(cs.host_lines(
        host, 0, cpu_pct=30, mem_pct=40, mem_total_bytes=2 ** 33, load=1,
        disk_read_bytes_total=1, disk_write_bytes_total=1,
        net_rx_bytes_total=1, net_tx_bytes_total=1, cpu_form=form,
        state={}, n_cpus=1, full=True, disk='ignored', ifname='ignored'))
    for key, type_instances in ours.items():
        assert key in real, f'{key} not written by real collectd: {real}'
        assert type_instances <= real[key], key
    # The measurements the datasource reads are all there.
    for meas in (cs.CPU, cs.MEMORY, cs.LOAD, cs.DISK_READ, cs.IF_RX):
        assert any(k[0] == meas for k in real), meas
    assert any(k[0] == cs.IF_RX and 'instance' in k[1] for k in real)


@pytest.mark.parametrize('form', ['percent', 'jiffies'])
def test_datasource_reads_real_collectd(real_collectd, form):
    host = _FORMS[form][0]
    ds = idb.InfluxDBDataSource(url=real_collectd.url, database='collectd',
                                cpu_form=form, retries=0)
    assert host in ds.list_names(metric_windows.COMPUTE_NODE)
    w = ds.cluster_windows(metric_windows.COMPUTE_NODE, [host], 30, 1)
    for metric in ('cpu', 'memory', 'load', 'net'):
        values = w.data[metric][0]
        values = values[~np.isnan(values)]
        assert values.size >= 1, metric
        assert (values >= 0).all(), metric
    cpu = w.data['cpu'][0]
    mem = w.data['memory'][0]
    assert np.nanmax(cpu) <= 100 and 0 < np.nanmax(mem) < 100


def test_line_protocol_escaping_and_missing_samples():
    line = cs.point(cs.CPU, {'host': 'a b,c=d', 'instance': '',
                             'type': 'percent'}, 1.5, 12.7)
    assert line == r'cpu_value,host=a\ b\,c\=d,type=percent value=1.5 12'
    assert cs.point(cs.CPU, {'host': 'h'}, float('nan'), 1) is None
    with pytest.raises(ValueError, match='backslash'):
        cs.point(cs.CPU, {'host': 'a\\'}, 1, 1)
    with pytest.raises(ValueError, match='state='):
        cs.host_lines('h', 0, cpu_pct=5, cpu_form='jiffies')
    with pytest.raises(ValueError, match='cpu_form'):
        cs.host_lines('h', 0, cpu_pct=5, cpu_form='ticks')
    with pytest.raises(ValueError, match='percentage'):
        cs.host_lines('h', 0, cpu_pct=150)
    assert cs.host_lines('h', 0) == []


def test_counters_accumulate_in_time_order():
    state = {}
    first = cs.instance_lines('u', 0, 50, 2 ** 29, form='virt', vcpus=2,
                              state=state, full=False)
    second = cs.instance_lines('u', 10, 50, 2 ** 29, form='virt', vcpus=2,
                               state=state, full=False)

    def total(lines):
        (line,) = [ln for ln in lines if 'virt_cpu_total' in ln]
        return float(line.split('value=')[1].split(' ')[0])

    # 50 % of 2 vCPUs for 10 s = 10 s of CPU time.
    assert total(second) - total(first) == pytest.approx(10e9)
    with pytest.raises(ValueError, match='backwards'):
        cs.instance_lines('u', 5, 50, 2 ** 29, form='virt', state=state)
