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

"""TLS to a real ``influxd``: certificates issued by a test CA.

A CA and a server certificate for 127.0.0.1 (and a second, unrelated CA)
are made with the openssl command in a temporary folder; influxd serves
HTTPS only with them. With verification on, the client trusts exactly
``ca_file``: the test CA is accepted, another CA, the system's trust store
and a name the certificate does not carry are refused with a message that
says so.
"""

import os
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from tests.unit.datasources import test_influxdb_faults as faults
from watcher_failpredict.datasources.influxdb import client
from watcher_failpredict.datasources.influxdb import datasource as idb
from watcher_failpredict.datasources.influxdb import local_server
from watcher_failpredict.datasources import windows as metric_windows

OPENSSL = shutil.which('openssl') or '/usr/bin/openssl'
T0 = 1_700_000_000 // 600 * 600


def _openssl(folder, *args):
    subprocess.run([OPENSSL, *args], cwd=folder, check=True,
                   capture_output=True, timeout=60)


def _make_ca(folder, name):
    _openssl(folder, 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
             'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
             '-subj', f'/CN=failpredict {name}', '-keyout', f'{name}.key',
             '-out', f'{name}.pem',
             '-addext', 'basicConstraints=critical,CA:TRUE',
             '-addext', 'keyUsage=critical,keyCertSign,cRLSign')
    return os.path.join(folder, f'{name}.pem')


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    """{'ca', 'other_ca', 'cert', 'key'}: PEM files in a temporary folder."""
    if not os.path.exists(OPENSSL):
        pytest.fail(f'{OPENSSL} not found: the TLS tests need the openssl '
                    f'command (Debian package "openssl")')
    folder = str(tmp_path_factory.mktemp('pki'))
    ca = _make_ca(folder, 'test-ca')
    other = _make_ca(folder, 'other-ca')
    with open(os.path.join(folder, 'server.ext'), 'w') as f:
        f.write('subjectAltName = IP:127.0.0.1\n'
                'basicConstraints = critical,CA:FALSE\n'
                'keyUsage = critical,digitalSignature\n'
                'extendedKeyUsage = serverAuth\n')
    _openssl(folder, 'req', '-newkey', 'ec', '-pkeyopt',
             'ec_paramgen_curve:prime256v1', '-nodes', '-subj',
             '/CN=127.0.0.1', '-keyout', 'server.key', '-out', 'server.csr')
    _openssl(folder, 'x509', '-req', '-in', 'server.csr', '-CA', ca,
             '-CAkey', 'test-ca.key', '-CAcreateserial', '-days', '2',
             '-extfile', 'server.ext', '-out', 'server.pem')
    return {'ca': ca, 'other_ca': other,
            'cert': os.path.join(folder, 'server.pem'),
            'key': os.path.join(folder, 'server.key')}


@pytest.fixture(scope='module')
def tls_server(pki):
    server = local_server.InfluxDBServer(
        tls_cert=pki['cert'], tls_key=pki['key'], tls_ca=pki['ca']).start()
    try:
        server.create_database('collectd')
        server.write_lines('collectd', [
            f'cpu_value,host=cmp-{i},type=percent,type_instance=idle '
            f'value={90 - 10 * i} {T0 + s}'
            for i in range(2) for s in range(0, 600, 10)])
        yield server
    finally:
        server.stop()


def test_the_server_speaks_https_only(tls_server):
    assert tls_server.url.startswith('https://127.0.0.1:')
    # plain HTTP to the HTTPS port: influxd answers 400, never data
    plain = client.InfluxDBClient(tls_server.url.replace('https', 'http'),
                                  database='collectd', timeout=5)
    with pytest.raises(metric_windows.MetricsUnavailable,
                       match='HTTP 400'):
        plain.query(['SHOW DATABASES'])


def test_verified_with_the_test_ca_the_client_reads(tls_server, pki):
    influx = client.InfluxDBClient(tls_server.url, database='collectd',
                                   verify_ssl=True, ca_file=pki['ca'],
                                   timeout=5)
    (result,) = influx.query(['SHOW DATABASES'])
    names = [row[0] for row in result['series'][0]['values']]
    assert 'collectd' in names
    # the datasource, configured the same way, reads the windows back
    ds = idb.InfluxDBDataSource(url=tls_server.url, database='collectd',
                                verify_ssl=True, ca_file=pki['ca'],
                                timeout=5, retries=0)
    assert ds.list_names() == ['cmp-0', 'cmp-1']
    win = ds.cluster_windows(metric_windows.COMPUTE_NODE,
                             ('cmp-0', 'cmp-1'), 300, 10, metrics=('cpu',),
                             end=T0 + 590)
    cpu = win.data['cpu']
    assert cpu[0][-5:].tolist() == [10.0] * 5     # 100 - idle 90
    assert cpu[1][-5:].tolist() == [20.0] * 5
    assert ds.check_availability() == 'available'
    ds.close()


@pytest.mark.parametrize('ca', ['other_ca', None])
def test_a_server_the_ca_file_did_not_sign_is_refused(tls_server, pki, ca):
    """Another CA, or the system's trust store (no ca_file), is refused."""
    influx = client.InfluxDBClient(tls_server.url, database='collectd',
                                   verify_ssl=True,
                                   ca_file=pki[ca] if ca else None,
                                   timeout=5, retries=1)
    t0 = time.monotonic()
    with pytest.raises(metric_windows.MetricsUnavailable) as info:
        influx.query(['SHOW DATABASES'])
    assert time.monotonic() - t0 < 10
    assert type(info.value) is metric_windows.MetricsUnavailable
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
    message = str(info.value)
    assert 'SSLCertVerificationError' in message
    assert 'certificate verify failed: unable to get local issuer ' \
           'certificate' in message
    assert tls_server.url in message
    assert influx.request_count == 2
    ds = idb.InfluxDBDataSource(url=tls_server.url, database='collectd',
                                verify_ssl=True,
                                ca_file=pki[ca] if ca else None,
                                timeout=5, retries=0)
    assert ds.check_availability() == 'not available'
    ds.close()


def test_a_name_the_certificate_does_not_carry_is_refused(tls_server, pki):
    """The certificate is for IP 127.0.0.1: 'localhost' is not it."""
    url = tls_server.url.replace('127.0.0.1', 'localhost')
    influx = client.InfluxDBClient(url, database='collectd',
                                   verify_ssl=True, ca_file=pki['ca'],
                                   timeout=5)
    with pytest.raises(metric_windows.MetricsUnavailable) as info:
        influx.query(['SHOW DATABASES'])
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
    assert "Hostname mismatch, certificate is not valid for 'localhost'" \
        in str(info.value)


def test_without_verification_the_same_server_is_read(tls_server, pki):
    """verify_ssl False: encrypted, not authenticated (ca_file ignored)."""
    for ca in (None, pki['other_ca']):
        influx = client.InfluxDBClient(tls_server.url, database='collectd',
                                       verify_ssl=False, ca_file=ca,
                                       timeout=5)
        (result,) = influx.query(['SHOW DATABASES'])
        assert ['collectd'] in result['series'][0]['values']


def test_a_trickle_over_tls_stops_at_the_deadline(pki):
    """The watchdog ends a TLS read too (the fake server, with the test
    CA's certificate, trickles its answer at 1 byte/s).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki['cert'], pki['key'])
    server = faults.FaultServer('trickle_body', ssl_context=context)
    try:
        influx = client.InfluxDBClient(server.url, database='collectd',
                                       verify_ssl=True, ca_file=pki['ca'],
                                       timeout=10, retries=2, deadline=2)
        t0 = time.monotonic()
        with pytest.raises(client.InfluxDBDeadlineExceeded) as info:
            influx.query(['SHOW DATABASES'])
        elapsed = time.monotonic() - t0
    finally:
        server.stop()
    assert "while reading the answer's body" in str(info.value)
    assert server.bytes_sent > 0 and len(server.requests) == 1
    assert 2 - 0.05 <= elapsed < 2 + faults.MARGIN


def test_a_server_that_never_completes_the_handshake(pki):
    """A listener nobody accepts on: TCP connects (the kernel's backlog),
    the TLS handshake never gets an answer.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as mute:
        mute.bind(('127.0.0.1', 0))
        mute.listen(4)
        influx = client.InfluxDBClient(
            f'https://127.0.0.1:{mute.getsockname()[1]}',
            database='collectd', verify_ssl=True, ca_file=pki['ca'],
            timeout=10, retries=2, deadline=1.5)
        t0 = time.monotonic()
        with pytest.raises(client.InfluxDBDeadlineExceeded) as info:
            influx.query(['SHOW DATABASES'])
        elapsed = time.monotonic() - t0
    assert 'of 1.5 s passed after 1.' in str(info.value)
    assert 'while connecting: POST /query (SHOW DATABASES)' in \
        str(info.value)
    assert influx.request_count == 1
    assert 1.5 - 0.05 <= elapsed < 1.5 + faults.MARGIN
