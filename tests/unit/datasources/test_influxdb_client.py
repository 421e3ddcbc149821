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

"""The InfluxDB HTTP client: connections, queries, writes, failures.

Against the scripted fake server of tests/conftest.py (``fake_influx``) for
what a real influxd cannot be made to do, and a real one for the rest.
"""

import base64
import http.client
import json
import logging
import ssl

import certifi
import pytest

from watcher_failpredict.datasources.influxdb import client
from watcher_failpredict.datasources.influxdb import local_server
from watcher_failpredict.datasources import windows as metric_windows

T0 = 1_700_000_000 // 600 * 600
SECRET = 'pa$$w0rd with spaces&p=leak'
#: Tag values that must reach the server intact (bind parameters).
EVIL_NAMES = [
    'we\'ird "host", x=1 ünïcødé ☃',
    "x' OR host =~ /.*/ OR host = 'cmp-2",
    'x"; DROP DATABASE "{db}"; SELECT * FROM "cpu_value',
]


def test_connection_class_and_tls_settings_follow_the_url_and_options():
    plain = client.InfluxDBClient(url='http://127.0.0.1:8086/',
                                  timeout=7).new_connection()
    assert type(plain) is http.client.HTTPConnection
    assert (plain.host, plain.port, plain.timeout) == ('127.0.0.1', 8086, 7)
    tls = client.InfluxDBClient(url='https://influx.example:9999',
                                verify_ssl=True).new_connection()
    assert isinstance(tls, http.client.HTTPSConnection)
    assert (tls.host, tls.port) == ('influx.example', 9999)
    assert tls._context.verify_mode == ssl.CERT_REQUIRED
    assert tls._context.check_hostname
    insecure = client.InfluxDBClient(url='https://influx.example',
                                     verify_ssl=False).new_connection()
    assert isinstance(insecure, http.client.HTTPSConnection)
    assert insecure.port == 8086
    assert insecure._context.verify_mode == ssl.CERT_NONE
    assert not insecure._context.check_hostname
    # ca_file: exactly the file's CAs are trusted, not the system's.
    bundle = certifi.where()
    with open(bundle) as f:
        n_certs = f.read().count('BEGIN CERTIFICATE')
    pinned = client.InfluxDBClient(url='https://influx.example',
                                   verify_ssl=True,
                                   ca_file=bundle).new_connection()
    assert pinned._context.verify_mode == ssl.CERT_REQUIRED
    assert pinned._context.cert_store_stats()['x509_ca'] == n_certs > 0
    # verify_ssl=False ignores ca_file rather than half-verifying.
    loose = client.InfluxDBClient(url='https://influx.example',
                                  verify_ssl=False,
                                  ca_file=bundle).new_connection()
    assert loose._context.verify_mode == ssl.CERT_NONE


def test_query_is_a_form_encoded_post_with_basic_auth(fake_influx):
    fake_influx.script = [(200, {'results': [
        {'statement_id': 0, 'series': [{'name': 'load_shortterm',
                                        'tags': {'host': 'h'},
                                        'columns': ['time', 'value'],
                                        'values': [[T0, 1.5]]}]},
        {'statement_id': 1}]}), (200, {'results': [{'statement_id': 0}]})]
    influx = client.InfluxDBClient(url=fake_influx.url + '/prefix/',
                                   database='collectd', username='wätcher',
                                   password=SECRET + ':colon', retries=0)
    evil = {'h0': EVIL_NAMES[1], 'h1': EVIL_NAMES[2]}
    raws = influx.query(['SELECT 1', 'SELECT 2'], evil)
    assert raws[0]['series'][0]['values'] == [[T0, 1.5]]
    assert influx.request_count == 1
    method, path, headers, form = fake_influx.seen[0]
    assert (method, path) == ('POST', '/prefix/query')
    assert headers['Content-Type'] == 'application/x-www-form-urlencoded'
    assert headers['Accept'] == 'application/x-msgpack'
    user, _, password = base64.b64decode(
        headers['Authorization'].split()[1]).decode().partition(':')
    assert (user, password) == ('wätcher', SECRET + ':colon')
    assert form['q'] == ['SELECT 1;\nSELECT 2']
    assert form['db'] == ['collectd'] and form['epoch'] == ['s']
    # Tricky values arrive intact, as bind parameters, not in the query.
    assert json.loads(form['params'][0]) == evil
    # The connection is kept for the next read.
    influx.query(['SELECT 3'], None)
    assert 'params' not in fake_influx.seen[1][3]
    assert len(fake_influx.connections) == 1
    # No user: no Authorization header.
    anon = client.InfluxDBClient(url=fake_influx.url, retries=0)
    anon.query(['SELECT 4'], None)
    assert 'Authorization' not in fake_influx.seen[2][2]


def test_a_stale_kept_alive_connection_is_reopened_in_the_same_attempt(
        fake_influx):
    fake_influx.close_after_answer = True
    influx = client.InfluxDBClient(url=fake_influx.url, retries=0)
    for _ in range(3):
        assert influx.query(['SELECT 1'], None) == [{'statement_id': 0}]
    assert influx.request_count == 3
    # A server that drops a fresh connection is an error, not a loop.
    fake_influx.script = ['drop']
    influx.close()
    with pytest.raises(metric_windows.MetricsUnavailable, match='Remote'):
        influx.query(['SELECT 1'], None)


@pytest.mark.parametrize('script,expected', [
    ([(500, {'error': 'engine on fire'})], 'HTTP 500: engine on fire'),
    ([(400, {'error': 'error parsing query'})], 'error parsing query'),
    ([(200, {'results': [{'statement_id': 0, 'error': 'bad field'}]})],
     'statement 0: bad field'),
    ([(200, {'nothing': 1})], 'answer without results'),
    (['hang'], 'timed out'),
])
def test_transport_errors_become_metrics_unavailable(fake_influx, caplog,
                                                     script, expected):
    caplog.set_level(logging.DEBUG)
    fake_influx.script = script
    url = fake_influx.url.replace('//', '//admin:' + 'w0rd-in-url@')
    influx = client.InfluxDBClient(url=url, database='collectd', retries=1,
                                   timeout=0.3)
    with pytest.raises(metric_windows.MetricsUnavailable) as info:
        influx.query(['SELECT 1'], {'h0': 'x'})
    message = str(info.value)
    assert expected in message and fake_influx.url in message
    assert influx.request_count == 2 == len(fake_influx.seen)
    for text in (message, caplog.text):
        assert 'w0rd' not in text
    # The answer must match the statements one to one.
    fake_influx.script = [(200, {'results': [{'statement_id': 0}]})]
    with pytest.raises(metric_windows.MetricsUnavailable,
                       match='1 results to 2'):
        influx.query(['SELECT 1', 'SELECT 2'], None)


def test_write_posts_line_protocol_in_batches(fake_influx):
    fake_influx.script = [(204, None)]
    influx = client.InfluxDBClient(fake_influx.url + '/prefix',
                                   database='default-db', username='w',
                                   password=SECRET)
    lines = [f'load_shortterm,host=h{i} value={i} {T0}' for i in range(5)]
    assert influx.write(lines, database='collectd', batch=2) == 5
    assert influx.request_count == 3 == len(fake_influx.seen)
    for method, path, headers, _form in fake_influx.seen:
        assert method == 'POST'
        assert path == '/prefix/write?db=collectd&precision=s'
        assert headers['Authorization'].startswith('Basic ')
    assert fake_influx.bodies == [
        ('\n'.join(lines[i:i + 2]) + '\n').encode() for i in (0, 2, 4)]
    # The client's database by default; a lone string is one line.
    assert influx.write('load_shortterm,host=x value=1 10') == 1
    assert fake_influx.seen[-1][1] == '/prefix/write?db=default-db&precision=s'
    assert len(fake_influx.connections) == 1       # one kept-alive socket
    with pytest.raises(ValueError, match='batch=0'):
        influx.write(lines, batch=0)
    with pytest.raises(ValueError, match='no database'):
        client.InfluxDBClient(fake_influx.url).write(lines)


def test_a_refused_write_names_the_server_and_cause_not_the_password(
        fake_influx, caplog):
    caplog.set_level(logging.DEBUG)
    fake_influx.script = [(400, {'error': 'unable to parse points'})]
    influx = client.InfluxDBClient(fake_influx.url, database='collectd',
                                   username='w', password=SECRET, retries=1)
    with pytest.raises(metric_windows.MetricsUnavailable) as info:
        influx.write(['bad line'])
    message = str(info.value)
    assert message.startswith(f'InfluxDB at {fake_influx.url} (database '
                              f"'collectd') could not be written to (write) "
                              f'after 2 attempt(s)')
    assert 'HTTP 400: unable to parse points' in message
    assert influx.request_count == 2
    for text in (message, caplog.text):
        assert SECRET not in text and 'w0rd' not in text


def test_ping_and_answers_ping(fake_influx):
    fake_influx.script = [(204, None)]
    influx = client.InfluxDBClient(fake_influx.url, retries=2)
    influx.ping()
    assert influx.answers_ping()
    assert [(m, p) for m, p, _h, _f in fake_influx.seen] == \
        [('GET', '/ping')] * 2
    fake_influx.script = [(500, {'error': 'down'})]
    assert not influx.answers_ping()
    with pytest.raises(metric_windows.MetricsUnavailable,
                       match=r'could not be read \(ping\) after 3 '
                             r'attempt\(s\): .*HTTP 500'):
        influx.ping()
    nobody = client.InfluxDBClient(
        f'http://127.0.0.1:{local_server.free_port()}', timeout=1)
    assert not nobody.answers_ping()


def test_urls_options_and_names_are_checked():
    for bad in ('ftp://h', 'http://', 'h:8086'):
        with pytest.raises(ValueError, match='must be http'):
            client.InfluxDBClient(bad)
    with pytest.raises(ValueError, match="'ftp://h:1/p' must be") as info:
        client.InfluxDBClient('ftp://u:pw@h:1/p?x=1')
    assert 'pw' not in str(info.value)
    with pytest.raises(ValueError, match='response_format'):
        client.InfluxDBClient('http://h', response_format='xml')
    in_url = client.InfluxDBClient('http://us%40r:p%3Aw@h:1/x')
    assert (in_url.username, in_url.url) == ('us@r', 'http://h:1/x')
    assert 'p:w' not in repr(in_url)
    assert client.safe_url('https://a:b@[::1]:8086/p?q=1#f') == \
        'https://[::1]:8086/p'
    for bad in ('', 'a"b', 'a\\b'):
        with pytest.raises(ValueError, match='database'):
            client.InfluxDBClient('http://h').create_database(bad)


def test_databases_queries_and_writes_on_a_real_server(influxdb_server):
    influx = client.InfluxDBClient(influxdb_server.url, database='c_client',
                                   response_format='json')
    assert influx.create_database('c_client') == 'c_client'
    try:
        influx.write([f'load_shortterm,host=h value=2.5 {T0}'])
        (result,) = influx.query(
            ['SELECT "value" FROM "load_shortterm" WHERE "host" = $h'],
            {'h': 'h'})
        assert result['series'][0]['values'] == [[T0, 2.5]]
        (rfc,) = influx.query(['SELECT "value" FROM "load_shortterm"'],
                              epoch=None)
        assert rfc['series'][0]['values'][0][0] == '2023-11-14T22:10:00Z'
    finally:
        influx.drop_database('c_client')
    (shown,) = influx.query(['SHOW DATABASES'])
    assert ['c_client'] not in shown['series'][0].get('values', [])
