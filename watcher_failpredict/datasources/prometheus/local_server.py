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

"""A throwaway loopback Prometheus for tests and benchmarks.

Tests of the Prometheus datasource read back from a real ``prometheus``
(Debian package ``prometheus``, 2.42) rather than from a mock: the PromQL
(range selectors, ``rate`` on counters, ``or``, label matching) is exactly
what a mock would get wrong.

:class:`PrometheusServer` starts ``prometheus`` on 127.0.0.1 on a free port
with its TSDB in a temporary folder, waits for ``/-/ready`` and removes
everything on :meth:`~PrometheusServer.stop`. History is loaded with
``promtool tsdb create-blocks-from openmetrics`` (:meth:`load`; samples
rendered by :func:`openmetrics`): the blocks are written into the data
folder while the server is stopped, then it is started (again) on them.
``scrape_configs`` (plain dicts, written as YAML) make it scrape real
exporters. No pytest dependency::

    server = PrometheusServer().start()
    self.addCleanup(server.stop)
    server.load(openmetrics([('node_load1', {'fqdn': 'h'}, [10], [1.0])]))
"""

import json
import math
import os
import shutil
import subprocess
import tempfile
import time

from watcher_failpredict.datasources.influxdb.local_server import free_port
from watcher_failpredict.datasources.prometheus import client as prom_client

PROMETHEUS = '/usr/bin/prometheus'
PROMTOOL = '/usr/bin/promtool'

_MISSING = ('{path} not found: a local Prometheus needs the Debian package '
            '"prometheus" (2.42; it ships promtool too). tools/run-tests '
            'installs it (apt-get install -y --no-install-recommends '
            'prometheus).')


def _label_value(value):
    return (str(value).replace('\\', '\\\\').replace('"', '\\"')
            .replace('\n', '\\n'))


def _number(value):
    value = float(value)
    if math.isnan(value):
        return 'NaN'
    if math.isinf(value):
        return '+Inf' if value > 0 else '-Inf'
    return repr(value)


def openmetrics_lines(series):
    """The sample lines of ``series`` (no ``# EOF``), one string each.

    promtool accepts a metric's series spread over the file, so large
    histories can be rendered and written a block at a time.
    """
    for name, labels, times, values in series:
        tags = ','.join(f'{k}="{_label_value(v)}"'
                        for k, v in sorted(labels.items()))
        head = f'{name}{{{tags}}}' if tags else name
        for t, v in zip(times, values):
            yield f'{head} {_number(v)} {float(t):.3f}\n'


def openmetrics(series):
    """OpenMetrics text of ``series``, for :meth:`PrometheusServer.load`.

    :param series: iterable of ``(metric name, {label: value}, times,
        values)``, times in Unix seconds (ascending within a series); a
        metric's series are written together.
    """
    by_name = {}
    for name, labels, times, values in series:
        by_name.setdefault(name, []).append((name, labels, times, values))
    return ''.join(line for items in by_name.values()
                   for line in openmetrics_lines(items)) + '# EOF\n'


class PrometheusServer:
    """One ``prometheus`` process on loopback, its TSDB in a temp folder.

    :param scrape_configs: Prometheus ``scrape_configs`` entries (dicts)
    :param scrape_interval: the global scrape interval, seconds
    """

    def __init__(self, scrape_configs=None, scrape_interval=1.0,
                 prometheus=PROMETHEUS, promtool=PROMTOOL,
                 start_timeout=20.0, remote_write_receiver=False):
        #: start with ``--web.enable-remote-write-receiver`` (samples
        #: written by :mod:`.remote_write`)
        self.remote_write_receiver = remote_write_receiver
        self.scrape_configs = list(scrape_configs or [])
        self.scrape_interval = scrape_interval
        self.prometheus = prometheus
        self.promtool = promtool
        self.start_timeout = start_timeout
        self.port = None
        self.dir = None
        self._proc = None
        self._log = None

    @property
    def url(self):
        if self.port is None:
            raise RuntimeError('PrometheusServer is not started')
        return f'http://127.0.0.1:{self.port}'

    @property
    def running(self):
        return self._proc is not None and self._proc.poll() is None

    @property
    def data_dir(self):
        return os.path.join(self.dir, 'data')

    def start(self):
        """Start prometheus and wait until /-/ready answers; returns self."""
        for path in (self.prometheus, self.promtool):
            if not os.path.exists(path):
                raise RuntimeError(_MISSING.format(path=path))
        if self.dir is None:
            self.dir = tempfile.mkdtemp(prefix='failpredict-prometheus-')
            os.makedirs(self.data_dir)
        last_error = None
        # A free port can be taken between free_port() and the bind.
        for _attempt in range(3):
            try:
                self._start_once()
                return self
            except RuntimeError as exc:
                last_error = exc
                self._kill()
        self.stop()
        raise last_error

    def _config(self):
        interval = f'{self.scrape_interval:g}s'
        return json.dumps({
            'global': {'scrape_interval': interval,
                       'evaluation_interval': interval},
            'scrape_configs': self.scrape_configs,
        }, indent=1)

    def _start_once(self):
        self.port = free_port()
        conf = os.path.join(self.dir, 'prometheus.yml')
        with open(conf, 'w') as f:
            f.write(self._config())
        self._log = open(os.path.join(self.dir, 'prometheus.log'), 'ab')
        self._proc = subprocess.Popen(
            [self.prometheus, f'--config.file={conf}',
             f'--storage.tsdb.path={self.data_dir}',
             '--storage.tsdb.retention.time=100y',
             f'--web.listen-address=127.0.0.1:{self.port}',
             '--log.level=warn'] + (
                 ['--web.enable-remote-write-receiver']
                 if self.remote_write_receiver else []),
            stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f'prometheus exited with {self._proc.returncode} at '
                    f'start; log tail:\n{self.log_tail()}')
            if self.ready():
                return
            time.sleep(0.05)
        raise RuntimeError(f'prometheus did not answer /-/ready on '
                           f'{self.url} within {self.start_timeout} s; log '
                           f'tail:\n{self.log_tail()}')

    def _kill(self):
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(10)
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self):
        """Terminate prometheus and remove its folder (idempotent)."""
        self._kill()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        self.port = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def log_tail(self, n=4000):
        if self.dir is None:
            return ''
        try:
            with open(os.path.join(self.dir, 'prometheus.log'), 'rb') as f:
                return f.read()[-n:].decode('utf-8', 'replace')
        except OSError:
            return ''

    def client(self, timeout=30.0):
        """A :class:`~.client.PrometheusClient` of this server."""
        return prom_client.PrometheusClient(self.url, timeout=timeout)

    def ready(self):
        conn = self.client(timeout=1)
        try:
            return conn.answers_ready()
        finally:
            conn.close()

    def load(self, text):
        """Add OpenMetrics ``text`` (ending ``# EOF``) to the TSDB.

        ``promtool tsdb create-blocks-from openmetrics`` writes the blocks
        into the data folder; a running server is stopped for it and
        started again (on a new port) so that it opens them.
        """
        return self.load_chunks([text])

    def load_chunks(self, chunks):
        """Like :meth:`load`, the text given in pieces (an iterable of
        strings, the last ending with ``# EOF``), written to the file as
        they come: a large history never sits in memory whole.
        """
        was_running = self.running
        if self.dir is None:
            self.dir = tempfile.mkdtemp(prefix='failpredict-prometheus-')
            os.makedirs(self.data_dir)
        self._kill()
        src = os.path.join(self.dir, 'history.om')
        with open(src, 'w') as f:
            for chunk in chunks:
                f.write(chunk)
        run = subprocess.run(
            [self.promtool, 'tsdb', 'create-blocks-from', 'openmetrics',
             src, self.data_dir], capture_output=True, text=True,
            timeout=600)
        os.unlink(src)
        if run.returncode != 0:
            raise RuntimeError(f'promtool could not load the history: '
                               f'{run.stderr[-2000:] or run.stdout[-2000:]}')
        if was_running:
            self.start()
        return self
