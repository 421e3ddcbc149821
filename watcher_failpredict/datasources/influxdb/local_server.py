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

"""A throwaway loopback influxd for tests, benchmarks and the testbed.

Tests of the InfluxDB datasource, the strategy and the end-to-end audit read
metrics back from a real ``influxd`` (Debian package ``influxdb``) rather
than from a mock, because the query shapes (bind parameters, GROUP BY time,
``non_negative_derivative`` on collectd counters, several statements in one
request) are exactly what a mock would get wrong; the decision-latency
benchmark measures against one too.

:class:`InfluxDBServer` writes an ``influxd`` configuration into a temporary
folder with every listener on 127.0.0.1 on a free port (HTTP, the RPC
``bind-address`` and, optionally, the native collectd input on UDP), starts
it, waits for ``/ping`` and removes everything on :meth:`~InfluxDBServer.stop`.
With ``tls_cert`` and ``tls_key`` it serves HTTPS only (``https-enabled``),
for tests of certificate verification; it then checks its own requests
against ``tls_ca`` when given. It talks to the server through
:class:`~.client.InfluxDBClient` and has no pytest dependency, so that
unittest/testtools-style tests can use it too::

    server = InfluxDBServer().start()
    self.addCleanup(server.stop)
    server.create_database('collectd')
    server.write_lines('collectd', ['load_shortterm,host=h value=1 10'])
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

from watcher_failpredict.datasources.influxdb import client as influx_client

INFLUXD = '/usr/bin/influxd'
TYPESDB = '/usr/share/collectd/types.db'

_MISSING = ('{path} not found: a local InfluxDB needs a real InfluxDB 1.x '
            'server (Debian package "influxdb"). The test command of '
            'README.rst installs it (apt-get install -y '
            '--no-install-recommends influxdb).')


def free_port(kind=socket.SOCK_STREAM):
    """A port on 127.0.0.1 that is free right now (TCP or UDP)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class InfluxDBServer:
    """One ``influxd`` process on loopback, its data in a temporary folder.

    :param collectd: also enable the native collectd input (UDP) writing
        into ``collectd_database``; its port is ``collectd_port``.
    :param auth: enable authentication and create an admin user
        ``admin_user`` / ``admin_password`` before returning from start().
    :param tls_cert: PEM certificate (chain) file: serve HTTPS with it
    :param tls_key: PEM private key file of ``tls_cert``
    :param tls_ca: CA file this object's own requests verify the server
        against (default: no verification of its own requests)
    """

    def __init__(self, collectd=False, collectd_database='collectd',
                 auth=False, admin_user='admin',
                 admin_password='s3cret-admin-pw', influxd=INFLUXD,
                 start_timeout=20.0, tls_cert=None, tls_key=None,
                 tls_ca=None):
        if (tls_cert is None) != (tls_key is None):
            raise ValueError('tls_cert and tls_key go together')
        for path in (tls_cert, tls_key, tls_ca):
            if path is not None and ('"' in str(path) or '\\' in str(path)):
                raise ValueError(f'{path!r}: no quotes or backslashes in '
                                 f'a TLS file path')
        self.tls_cert = tls_cert
        self.tls_key = tls_key
        self.tls_ca = tls_ca
        self.collectd = collectd
        self.collectd_database = collectd_database
        self.auth = auth
        self.admin_user = admin_user
        self.admin_password = admin_password
        self.influxd = influxd
        self.start_timeout = start_timeout
        self.http_port = None
        self.collectd_port = None
        self.dir = None
        self._proc = None
        self._log = None

    # -- lifecycle ---------------------------------------------------------

    @property
    def url(self):
        if self.http_port is None:
            raise RuntimeError('InfluxDBServer is not started')
        scheme = 'https' if self.tls_cert else 'http'
        return f'{scheme}://127.0.0.1:{self.http_port}'

    @property
    def running(self):
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self):
        """influxd's process id (while running)."""
        if not self.running:
            raise RuntimeError('InfluxDBServer is not running')
        return self._proc.pid

    def start(self):
        """Start influxd and wait until /ping answers; returns self."""
        if not os.path.exists(self.influxd):
            raise RuntimeError(_MISSING.format(path=self.influxd))
        if self.collectd and not os.path.exists(TYPESDB):
            raise RuntimeError(f'{TYPESDB} not found: install the Debian '
                               f'package "collectd-core" (README.rst test '
                               f'command) to use the collectd input')
        self.dir = tempfile.mkdtemp(prefix='failpredict-influxd-')
        last_error = None
        # A free port can be taken between free_port() and influxd's bind;
        # try a few times with fresh ports before giving up.
        for _attempt in range(3):
            try:
                self._start_once()
                break
            except RuntimeError as exc:
                last_error = exc
                self._kill()
        else:
            self.stop()
            raise last_error
        if self.auth:
            # influxd lets anyone create the first admin user.
            self._run(f"CREATE USER \"{self.admin_user}\" WITH PASSWORD "
                      f"'{self.admin_password}' WITH ALL PRIVILEGES",
                      auth=False)
        if self.collectd:
            self.create_database(self.collectd_database)
        return self

    def _start_once(self):
        self.http_port = free_port()
        rpc_port = free_port()
        self.collectd_port = free_port(socket.SOCK_DGRAM)
        conf = os.path.join(self.dir, 'influxdb.conf')
        with open(conf, 'w') as f:
            f.write(self._config(rpc_port))
        self._log = open(os.path.join(self.dir, 'influxd.log'), 'ab')
        self._proc = subprocess.Popen(
            [self.influxd, '-config', conf], stdout=self._log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f'influxd exited with {self._proc.returncode} at start; '
                    f'log tail:\n{self.log_tail()}')
            if self.ping():
                return
            time.sleep(0.05)
        raise RuntimeError(f'influxd did not answer /ping on {self.url} '
                           f'within {self.start_timeout} s; log tail:\n'
                           f'{self.log_tail()}')

    def _config(self, rpc_port):
        d = self.dir
        text = f"""\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{d}/meta"
  logging-enabled = false

[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
  index-version = "inmem"

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false

[retention]
  enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{self.http_port}"
  auth-enabled = {'true' if self.auth else 'false'}
  log-enabled = false
  pprof-enabled = false
{self._https()}  unix-socket-enabled = false
  max-body-size = 0

[ifql]
  enabled = false

[logging]
  level = "warn"
  suppress-logo = true
"""
        if self.collectd:
            text += f"""
[[collectd]]
  enabled = true
  bind-address = "127.0.0.1:{self.collectd_port}"
  database = "{self.collectd_database}"
  typesdb = "{TYPESDB}"
  security-level = "none"
  batch-size = 5000
  batch-timeout = "1s"
"""
        return text

    def _https(self):
        if not self.tls_cert:
            return '  https-enabled = false\n'
        return (f'  https-enabled = true\n'
                f'  https-certificate = "{self.tls_cert}"\n'
                f'  https-private-key = "{self.tls_key}"\n')

    def _kill(self):
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    # influxd 1.6 sometimes hangs on SIGTERM with the
                    # collectd input on; its data is throw-away anyway.
                    self._proc.wait(2)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(10)
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self):
        """Terminate influxd and remove its folder (idempotent)."""
        self._kill()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def log_tail(self, n=4000):
        """The end of influxd's own log, for failure messages."""
        if self.dir is None:
            return ''
        try:
            with open(os.path.join(self.dir, 'influxd.log'), 'rb') as f:
                return f.read()[-n:].decode('utf-8', 'replace')
        except OSError:
            return ''

    # -- HTTP, through the client ---------------------------------------------

    def client(self, database=None, auth=True, timeout=60.0):
        """An :class:`~.client.InfluxDBClient` of this server (JSON answers).

        :param auth: with ``auth``, log in as the admin user
        """
        admin = self.auth and auth
        return influx_client.InfluxDBClient(
            self.url, database=database,
            username=self.admin_user if admin else None,
            password=self.admin_password if admin else None,
            timeout=timeout, response_format='json',
            verify_ssl=self.tls_ca is not None, ca_file=self.tls_ca)

    def ping(self):
        """True if influxd answers /ping now."""
        conn = self.client(timeout=1)
        try:
            return conn.answers_ping()
        finally:
            conn.close()

    def _run(self, q, db=None, auth=True):
        conn = self.client(auth=auth)
        try:
            return conn.call('query', conn.post_query, q, None, db, None)
        finally:
            conn.close()

    def query(self, q, db=None):
        """Run InfluxQL (trusted test input), return the JSON answer text."""
        return json.dumps({'results': self._run(q, db)})

    def create_database(self, name):
        """Create database ``name`` (a test-chosen identifier)."""
        conn = self.client()
        try:
            return conn.create_database(name)
        finally:
            conn.close()

    def create_user(self, user, password, admin=False):
        self._run(f"CREATE USER \"{user}\" WITH PASSWORD '{password}'"
                  + (' WITH ALL PRIVILEGES' if admin else ''))

    def write_lines(self, db, lines, precision='s', batch=5000):
        """Write line-protocol strings into ``db``, ``batch`` per request."""
        conn = self.client(database=db)
        try:
            return conn.write(lines, precision=precision, batch=batch)
        finally:
            conn.close()
