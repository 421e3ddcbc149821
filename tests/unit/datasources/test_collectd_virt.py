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

"""Instance metrics from real collectd's ``virt`` plugin, read back.

collectd 5.12 (Debian ``collectd``, its virt plugin needs ``libvirt0``)
reads libvirt's in-process fake driver and sends to a real influxd's
collectd input on loopback. With ``HostnameFormat uuid`` the InfluxDB
``host`` tag of every ``virt_*`` series is the domain's UUID, which for a
Nova instance is the instance UUID: that is the key
``InfluxDBDataSource(instance_metrics='virt')`` reads instances by, and the
strategy asks for them by ``instance.uuid``.

libvirt's test driver reports a domain's CPU time as the wall clock, i.e.
one vCPU fully busy: the datasource must read about 100 (percent of ONE
vCPU; the strategy divides by the flavor's vCPUs). It reports no balloon
memory statistics, only ``total``, so instance memory reads as missing
(NaN) and the strategy falls back to the flavor's RAM.
"""

import json
import os
import shutil
import subprocess
import tempfile
import time

import numpy as np
import pytest

from watcher_failpredict.datasources import influxdb as idb
from watcher_failpredict.datasources.influxdb import datasource
from watcher_failpredict.datasources.influxdb import local_server
from watcher_failpredict.datasources import windows as metric_windows

COLLECTD = '/usr/sbin/collectd'
VIRT_SO = '/usr/lib/collectd/virt.so'

#: The UUID of the one domain ("test") of libvirt's test:///default.
DEFAULT_UUID = '6695eb01-f6a4-8304-79aa-97f2502e193f'

#: Nova-style instance UUIDs of a custom test-driver node.
NOVA_UUIDS = ('3f1d2c4b-8a9e-4f60-b7a1-0c2d3e4f5a61',
              'b2c3d4e5-f607-4182-93a4-b5c6d7e8f901')

_NODE_XML = """\
<node>
{domains}
</node>
"""

_DOMAIN_XML = """\
  <domain type="test">
    <name>instance-{i:08x}</name>
    <uuid>{uuid}</uuid>
    <memory unit="MiB">{mem}</memory>
    <vcpu>{vcpus}</vcpu>
    <os><type>hvm</type></os>
  </domain>"""

_CONF = """\
Hostname "compute-virt"
FQDNLookup false
Interval 1
BaseDir "{dir}"
PIDFile "{dir}/collectd.pid"
TypesDB "/usr/share/collectd/types.db"
LoadPlugin virt
<Plugin virt>
  Connection "{uri}"
  RefreshInterval 60
  HostnameFormat uuid
</Plugin>
LoadPlugin network
<Plugin network>
  Server "127.0.0.1" "{port}"
</Plugin>
"""


def _virt_missing():
    """Why the virt plugin cannot load here, or None."""
    if not os.path.exists(VIRT_SO):
        return f'{VIRT_SO} not found (Debian package "collectd-core")'
    ldd = subprocess.run(['ldd', VIRT_SO], capture_output=True, text=True)
    if 'not found' in ldd.stdout:
        return ('collectd\'s virt plugin cannot load: libvirt.so.0 missing '
                '(Debian package "libvirt0"; tools/run-tests installs it)')
    return None


def _cpu_counts(server):
    body = json.loads(server.query(
        'SELECT count("value") FROM "virt_value" WHERE "type" = '
        '\'virt_cpu_total\' GROUP BY "host"', 'collectd'))
    return {s['tags']['host']: s['values'][0][1]
            for s in body['results'][0].get('series', [])}


@pytest.fixture(scope='module')
def virt_collectd():
    why = _virt_missing()
    if why or not os.path.exists(COLLECTD):
        pytest.fail(why or f'{COLLECTD} not found: run tools/run-tests, '
                           f'which installs the Debian package "collectd"')
    server = local_server.InfluxDBServer(collectd=True).start()
    tmp = tempfile.mkdtemp(prefix='failpredict-virt-')
    procs = []
    try:
        node = os.path.join(tmp, 'node.xml')
        with open(node, 'w') as f:
            f.write(_NODE_XML.format(domains='\n'.join(
                _DOMAIN_XML.format(i=i + 1, uuid=u, mem=512 * (i + 1),
                                   vcpus=i + 1)
                for i, u in enumerate(NOVA_UUIDS))))
        for name, uri in (('default', 'test:///default'),
                          ('custom', 'test://' + node)):
            d = os.path.join(tmp, name)
            os.makedirs(d)
            conf = os.path.join(d, 'collectd.conf')
            with open(conf, 'w') as f:
                f.write(_CONF.format(dir=d, uri=uri,
                                     port=server.collectd_port))
            procs.append(subprocess.Popen(
                [COLLECTD, '-f', '-C', conf], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL))
        want = (DEFAULT_UUID,) + NOVA_UUIDS
        deadline = time.monotonic() + 30
        while True:
            counts = _cpu_counts(server)
            if all(counts.get(u, 0) >= 6 for u in want):
                break
            for proc in procs:
                assert proc.poll() is None, 'collectd (virt) exited early'
            assert time.monotonic() < deadline, (
                f'virt plugin data missing after 30 s: {counts}; influxd '
                f'log: {server.log_tail()}')
            time.sleep(0.5)
        yield server
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(10)
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def test_virt_series_are_keyed_by_domain_uuid(virt_collectd):
    body = json.loads(virt_collectd.query(
        'SHOW TAG VALUES FROM "virt_value" WITH KEY = "host"', 'collectd'))
    hosts = {v[1] for v in body['results'][0]['series'][0]['values']}
    # HostnameFormat uuid: the collectd Hostname ("compute-virt") is NOT
    # the key; each domain's UUID is.
    assert hosts == {DEFAULT_UUID, *NOVA_UUIDS}
    series = json.loads(virt_collectd.query(
        'SHOW SERIES FROM "virt_value" WHERE "host" = \'%s\''
        % DEFAULT_UUID, 'collectd'))
    keys = {v[0] for v in series['results'][0]['series'][0]['values']}
    assert f'virt_value,host={DEFAULT_UUID},type=virt_cpu_total' in keys
    assert (f'virt_value,host={DEFAULT_UUID},type=memory,'
            f'type_instance=total') in keys


def test_datasource_lists_instances_by_uuid(virt_collectd):
    ds = idb.InfluxDBDataSource(url=virt_collectd.url, database='collectd',
                                instance_metrics='virt', retries=0)
    assert ds.instance_cpu_per_vcpu
    assert ds.list_names(metric_windows.INSTANCE) == sorted(
        (DEFAULT_UUID,) + NOVA_UUIDS)


def test_cluster_windows_reads_instance_cpu_and_missing_memory(
        virt_collectd):
    ds = idb.InfluxDBDataSource(url=virt_collectd.url, database='collectd',
                                instance_metrics='virt', retries=0)
    names = (DEFAULT_UUID,) + NOVA_UUIDS + ('no-such-instance',)
    w = ds.cluster_windows(metric_windows.INSTANCE, names, 8, 2,
                           metrics=('cpu', 'memory'))
    # cpu and memory of all instances: one request each, concurrently.
    assert ds.request_count == datasource.QUERY_SPLIT
    assert tuple(w.names) == names
    for uuid in names[:3]:
        cpu = w.series('cpu', uuid)
        got = cpu[~np.isnan(cpu)]
        assert got.size >= 2, (uuid, cpu)
        # The fake driver's CPU time is the wall clock: one busy vCPU,
        # 100 % of ONE vCPU whatever the domain's vCPU count.
        assert np.median(got) == pytest.approx(100.0, abs=15), (uuid, cpu)
        # No balloon statistics from the fake driver: memory is missing,
        # not zero (the strategy then assumes the flavor's RAM).
        assert np.isnan(w.series('memory', uuid)).all()
    assert np.isnan(w.series('cpu', 'no-such-instance')).all()
