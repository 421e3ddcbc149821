"""The InfluxDB 1.x datasource for metrics written by collectd.

collectd agents on the compute hosts (and, optionally, in each VNF or through
the host's ``virt`` plugin) send their values to InfluxDB's native collectd
input; :mod:`~watcher_failpredict.datasources.collectd_schema` describes the
resulting measurements and tags.

Every :meth:`InfluxDBDataSource.fetch` call is a fixed number of HTTP
requests: the InfluxQL statements of all requested metrics are joined with
``;`` and, for the bulk reads of ``cluster_windows``, sent as
``QUERY_SPLIT`` (2) concurrent requests balanced by the statements'
expected cost (a read of a single statement, and each call of Watcher's
per-resource helpers, is one request).
Reading the whole cluster's windows therefore costs the same requests
whatever the number of hosts, which keeps an audit's latency flat in
requests as the cloud grows. :meth:`InfluxDBDataSource.cluster_means`
answers the hosts' disk and network I/O as their mean rate over a window,
computed by the server (see there), for consumers that need no more. Two
read modes, chosen per read:

* **raw** (granularity < ``RAW_FACTOR`` x ``collectd_interval``, e.g. 10 s
  windows of 10 s collectd data): the statements select the raw points,
  grouped by their tags only, and this module averages them into windows
  and derives counter rates itself with numpy (per series: difference over
  elapsed time between consecutive samples; a negative difference is a
  counter reset and gives no rate). With about one sample per window there
  is nothing for the server to reduce, and InfluxDB 1.6's ``GROUP BY time``
  costs several times the raw scan (measured at 1,000 hosts: 1.8 s against
  0.3 s for the same 62k points). The newest, still-filling window is exact
  without extra statements, since each rate covers its own sample step.
* **server** (coarser windows): the server reduces (``GROUP BY time``,
  ``mean`` for gauges, ``non_negative_derivative(max(value), 1s)`` for
  counters, plus one small statement per counter measurement that makes the
  newest partial window exact), so fewer points cross the wire.

Answers are requested as MessagePack (``Accept: application/x-msgpack``),
which InfluxDB 1.6 encodes and ``msgpack`` decodes about 2.5x faster than
JSON. Queries do not go through the ``influxdb`` client: each thread keeps
one persistent ``http.client`` connection per datasource and POSTs the
query form-encoded (``q``, ``db``, ``epoch``, ``params``) to ``/query``,
so long bind-parameter lists never meet URL limits (influxd refuses a GET
whose URL passes 1 MB). Measured at 1,000 hosts (10 s windows, raw path,
a 7 MB answer; median of 15 interleaved reads of the same data): the host
read took 2.20 s through ``requests`` and 1.60 s through ``http.client``;
a 400-instance read 0.47 and 0.39 s. Most of what is left is influxd
producing the answer (about 1.5 s of its CPU per host read), hence the two
concurrent requests: influxd answers on both cores, and each answer is
decoded in the thread that fetched it while the server still computes the
other. Python's cyclic garbage collector is paused while answers are
fetched and turned into arrays (see ``_gc_paused``). The ``influxdb``
client still serves ``/ping`` and writes (:mod:`.risk_recorder`).

Tag values (host names, instance UUIDs) only ever reach the server as bind
parameters; the only numbers interpolated into statements are times and
durations this module computes itself.

Units returned (see ``metric_windows.HOST_METRICS`` / ``metric_windows.INSTANCE_METRICS``):

* host ``cpu``: percent of the host. Percent form: ``100 - idle``. Jiffies
  form: ``100 * (1 - rate(idle) / rate(all states))`` over all CPUs.
* host ``memory``: percent used; ``memory_form`` 'percent': collectd's
  ``type=percent``/``used``; 'absolute': ``used / (used + free + buffered +
  cached + slab_recl + slab_unrecl)`` from ``type=memory``. Only the
  configured form is queried. ``memory_kib``: ``type=memory``/``used`` in
  KiB (the absolute form's, whatever ``memory_form``).
* host ``load``: ``load_shortterm``; ``disk``: bytes/s read + written over
  all disks; ``net``: bytes/s received + sent over all interfaces but ``lo``.
* instance ``cpu``: 'guest' form, as host cpu (percent of its vCPUs);
  'virt' form, ``rate(virt_cpu_total ns) / 1e9 * 100``, i.e. **percent of
  one vCPU** (the datasource does not know the flavor: divide by the vCPU
  count to get percent of the instance). Instance ``memory``: MiB used;
  'guest': ``memory`` ``used``; 'virt': ``available - unused`` (the guest's
  own view, needs the balloon driver's stats), else ``rss``.
"""

import base64
import contextlib
import gc
import http.client
import itertools
import json
import math
import re
import ssl
import threading
import time
import urllib.parse

import numpy as np
from oslo_log import log

from watcher_failpredict.conf import CONF
from watcher_failpredict.datasources import base
from watcher_failpredict.datasources import collectd_schema as cs
from watcher_failpredict.datasources import windows as metric_windows

LOG = log.getLogger(__name__)

NAME = 'failpredict_influxdb'

_MEMORY_PARTS = ('used', 'free', 'buffered', 'cached', 'slab_recl',
                 'slab_unrecl')
_VIRT_MEMORY_PARTS = (cs.VIRT_MEMORY_AVAILABLE, cs.VIRT_MEMORY_UNUSED,
                      cs.VIRT_MEMORY_RSS)
_MIB = 2.0 ** 20

#: Granularities below RAW_FACTOR x collectd_interval are read raw and
#: windowed locally (about 1-3 samples per window: the server would move as
#: many points after an expensive GROUP BY time); coarser ones are reduced by
#: the server, which then moves several times fewer points.
RAW_FACTOR = 3
MEMORY_FORMS = ('percent', 'absolute')
RESPONSE_FORMATS = ('msgpack', 'json')
#: Every bulk read (``cluster_windows``) of two or more statements sends
#: them as this many concurrent requests (balanced by weight, see
#: _balanced_groups), whatever the number of names: the server answers on
#: two cores while the client decodes, and an audit's request count depends
#: on the metrics read, never on the size of the cluster. Watcher's
#: per-resource helpers stay one request per call.
QUERY_SPLIT = 2
_ACCEPT = {'msgpack': 'application/x-msgpack', 'json': 'application/json'}


class InfluxDBQueryError(Exception):
    """InfluxDB refused a query (HTTP status or a statement's error)."""


def _regex_of(words):
    """An InfluxQL regex literal matching exactly ``words`` (constants)."""
    return '/^(' + '|'.join(re.escape(w) for w in words) + ')$/'


class InfluxDBDataSource(base.WindowsDataSource):
    """Watcher datasource reading collectd metrics from InfluxDB 1.x.

    Built from ``[failpredict]`` options; any keyword argument given
    overrides its option (tests, the benchmark and the training command pass
    them explicitly). ``response_format`` ('msgpack' or 'json') is not an
    option: msgpack is faster and decodes to the same values; JSON is kept
    for comparison and diagnosis. ``query_split`` (not an option either)
    is how many concurrent requests a large read is split into; 1 sends
    every read as one request.
    """

    NAME = NAME

    def __init__(self, url=None, database=None, username=None,
                 password=None, verify_ssl=None, ca_file=None, timeout=None,
                 retries=None, cpu_form=None, instance_metrics=None,
                 host_name_map=None, memory_form=None,
                 collectd_interval=None, response_format='msgpack',
                 query_split=QUERY_SPLIT):
        super().__init__()
        opts = CONF.failpredict

        def pick(value, option):
            return getattr(opts, option) if value is None else value

        url = pick(url, 'influxdb_url')
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ('http', 'https') or not parsed.hostname:
            raise ValueError(f'InfluxDB URL {_safe_url(url)!r} must be '
                             f'http(s)://host[:port][/path]')
        self.url = _safe_url(url)
        self._parsed = parsed
        self.database = pick(database, 'influxdb_database')
        self.username = pick(username, 'influxdb_username')
        self._password = pick(password, 'influxdb_password')
        if self.username is None and parsed.username:
            self.username = urllib.parse.unquote(parsed.username)
            self._password = urllib.parse.unquote(parsed.password or '')
        self.verify_ssl = pick(verify_ssl, 'influxdb_verify_ssl')
        self.ca_file = pick(ca_file, 'influxdb_ca_file')
        self.timeout = float(pick(timeout, 'influxdb_timeout'))
        self.retries = int(pick(retries, 'influxdb_retries'))
        self.cpu_form = pick(cpu_form, 'cpu_form')
        if self.cpu_form not in cs.CPU_FORMS:
            raise ValueError(f'cpu_form={self.cpu_form!r}; expected one of '
                             f'{cs.CPU_FORMS}')
        self.instance_metrics = pick(instance_metrics, 'instance_metrics')
        if self.instance_metrics not in cs.INSTANCE_FORMS:
            raise ValueError(f'instance_metrics={self.instance_metrics!r}; '
                             f'expected one of {cs.INSTANCE_FORMS}')
        self.memory_form = pick(memory_form, 'memory_form')
        if self.memory_form not in MEMORY_FORMS:
            raise ValueError(f'memory_form={self.memory_form!r}; expected '
                             f'one of {MEMORY_FORMS}')
        self.collectd_interval = float(pick(collectd_interval,
                                            'collectd_interval'))
        if not self.collectd_interval > 0:
            raise ValueError(f'collectd_interval={self.collectd_interval!r} '
                             f'must be positive')
        if response_format not in RESPONSE_FORMATS:
            raise ValueError(f'response_format={response_format!r}; '
                             f'expected one of {RESPONSE_FORMATS}')
        self.response_format = response_format
        if isinstance(query_split, bool) or not isinstance(query_split, int) \
                or query_split < 1:
            raise ValueError(f'query_split={query_split!r} must be an '
                             f'integer >= 1')
        self.query_split = query_split
        self._pool = None
        self.host_name_map = dict(pick(host_name_map, 'host_name_map') or {})
        #: HTTP requests made so far (each retry attempt counts).
        self.request_count = 0
        self._client = None
        self._local = threading.local()
        self._conn_lock = threading.Lock()
        self._connections = []

    def __repr__(self):
        return (f'{type(self).__name__}(url={self.url!r}, '
                f'database={self.database!r})')

    # -- connection ----------------------------------------------------------

    @property
    def client(self):
        """The ``influxdb.InfluxDBClient`` (ping, writes), made on first use.

        Queries do not use it (see :meth:`_post_query`).
        """
        if self._client is None:
            import influxdb
            p = self._parsed
            https = p.scheme == 'https'
            verify = bool(self.verify_ssl)
            if verify and self.ca_file:
                verify = self.ca_file
            self._client = influxdb.InfluxDBClient(
                host=p.hostname, port=p.port or 8086,
                username=self.username, password=self._password,
                database=self.database, ssl=https, verify_ssl=verify,
                timeout=self.timeout, retries=1, path=p.path.rstrip('/'),
                headers={'Accept': _ACCEPT[self.response_format]})
        return self._client

    def _redact(self, text):
        text = str(text)
        # requests' messages quote the request path with its query string
        # (the whole InfluxQL and bind parameters): keep the path only.
        text = re.sub(r'(url: )([^\s?]*)\?\S*', r'\1\2?...', text)
        if self._password:
            for secret in {self._password,
                           urllib.parse.quote(self._password, safe=''),
                           urllib.parse.quote_plus(self._password)}:
                text = text.replace(secret, '***')
        if len(text) > 400:
            text = text[:400] + '...'
        return text

    def _call(self, what, func, *args, **kwargs):
        """Run one client call with retries; MetricsUnavailable at the end."""
        import influxdb.exceptions
        import requests
        errors = (requests.RequestException, OSError, ValueError,
                  http.client.HTTPException, InfluxDBQueryError,
                  influxdb.exceptions.InfluxDBClientError,
                  influxdb.exceptions.InfluxDBServerError)
        attempts = self.retries + 1
        cause = None
        for attempt in range(attempts):
            with self._conn_lock:  # _read's threads count too
                self.request_count += 1
            try:
                return func(*args, **kwargs)
            except errors as exc:
                cause = f'{type(exc).__name__}: {self._redact(exc)}'
                LOG.warning('InfluxDB %s at %s (database %s) failed, '
                            'attempt %d of %d: %s', what, self.url,
                            self.database, attempt + 1, attempts, cause)
                if attempt + 1 < attempts:
                    time.sleep(min(0.5, 0.05 * 2 ** attempt))
        raise metric_windows.MetricsUnavailable(
            f'InfluxDB at {self.url} (database {self.database!r}) could not '
            f'be read ({what}) after {attempts} attempt(s): {cause}')

    # -- query transport ------------------------------------------------------

    def _new_connection(self):
        """An unopened ``http.client`` connection to the server.

        HTTPS verifies the server against ``ca_file`` (or the system's
        trust store) unless ``verify_ssl`` is false. ``timeout`` bounds
        connecting and every blocking read, as it did with requests.
        """
        p = self._parsed
        if p.scheme != 'https':
            return http.client.HTTPConnection(p.hostname, p.port or 8086,
                                              timeout=self.timeout)
        if self.verify_ssl:
            context = ssl.create_default_context(cafile=self.ca_file or None)
        else:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection(p.hostname, p.port or 8086,
                                           timeout=self.timeout,
                                           context=context)

    def _connection(self):
        """This thread's persistent connection (kept alive between reads)."""
        conn = getattr(self._local, 'conn', None)
        if conn is None:
            conn = self._local.conn = self._new_connection()
            with self._conn_lock:
                self._connections.append(conn)
        return conn

    def close(self):
        """Close the persistent query connections (they reopen on use)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        with self._conn_lock:
            conns, self._connections = self._connections, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    def _headers(self):
        headers = {'Accept': _ACCEPT[self.response_format],
                   'Content-Type': 'application/x-www-form-urlencoded'}
        if self.username is not None:
            token = f'{self.username}:{self._password or ""}'
            headers['Authorization'] = 'Basic ' + base64.b64encode(
                token.encode('utf-8')).decode('ascii')
        return headers

    def _exchange(self, body):
        """POST ``body`` to /query; ``(status, content type, body)``.

        A kept-alive connection the server has meanwhile closed fails on
        first use: the (idempotent, read-only) query is then sent once more
        on a fresh connection, within the same attempt.
        """
        path = self._parsed.path.rstrip('/') + '/query'
        headers = self._headers()
        for last in (False, True):
            conn = self._connection()
            reused = conn.sock is not None
            try:
                conn.request('POST', path, body, headers)
                resp = conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError):
                conn.close()
                if reused and not last:
                    continue
                raise
            except BaseException:
                conn.close()  # never reuse a connection left mid-answer
                raise
            return resp.status, resp.getheader('Content-Type', ''), data

    @staticmethod
    def _decode_body(content_type, data):
        if not data:
            return {}
        if content_type.startswith(_ACCEPT['msgpack']):
            import msgpack
            return msgpack.unpackb(data, raw=False)
        return json.loads(data)

    def _post_query(self, query, bind_params):
        """One POST /query round trip: the answer's ``results`` list.

        The query and bind parameters travel form-encoded in the body, so
        thousands of bound names never meet URL length limits.
        """
        form = {'q': query, 'epoch': 's'}
        if self.database is not None:
            form['db'] = self.database
        if bind_params:
            form['params'] = json.dumps(bind_params)
        body = urllib.parse.urlencode(form).encode('ascii')
        status, content_type, data = self._exchange(body)
        try:
            answer = self._decode_body(content_type, data)
        except ValueError:
            if status == 200:
                raise
            answer = {}
        if status != 200:
            error = answer.get('error') if isinstance(answer, dict) else None
            raise InfluxDBQueryError(
                f'HTTP {status}: '
                f'{error or data[:200].decode("utf-8", "replace")}')
        results = answer.get('results')
        if not isinstance(results, list):
            raise InfluxDBQueryError(f'answer without results: {answer}')
        for result in results:
            if result.get('error'):
                raise InfluxDBQueryError(
                    f'statement {result.get("statement_id")}: '
                    f'{result["error"]}')
        return results

    def _query(self, statements, bind_params):
        """Send ``statements`` in one request; a list of raw result dicts."""
        query = ';\n'.join(statements)
        with _gc_paused():
            results = self._call('query', self._post_query, query,
                                 bind_params)
        if len(results) != len(statements):
            raise metric_windows.MetricsUnavailable(
                f'InfluxDB at {self.url} (database {self.database!r}) '
                f'answered {len(results)} results to {len(statements)} '
                f'statements')
        return results

    def _read(self, statements, bind_params, weights=None, each=None):
        """Like :meth:`_query`, split ``query_split`` ways when ``weights``.

        The first group is sent from the calling thread, the others from a
        small thread pool (each thread has its own connection); results come
        back in statement order. Every group is waited for before an error
        is raised.

        :param each: ``each(i, result)`` turns statement i's raw result into
            what is returned for it, in the thread that fetched it, so that
            one group's answer is decoded while the server still computes
            another's. A ValueError, KeyError, IndexError or TypeError it
            raises is returned in the result's place, for the caller to
            report with its context.
        """
        # One pause for every group and its decoding, in all threads.
        with _gc_paused():
            return self._read_paused(statements, bind_params, weights, each)

    def _read_paused(self, statements, bind_params, weights, each):
        groups = []
        if weights is not None and self.query_split > 1:
            groups = _balanced_groups(weights, self.query_split)
        if len(groups) < 2:
            return self._read_group(range(len(statements)), statements,
                                    bind_params, each)
        if self._pool is None:
            from concurrent import futures
            self._pool = futures.ThreadPoolExecutor(
                self.query_split - 1, thread_name_prefix='influxdb-query')
        answers, error = [], None
        pending = [self._pool.submit(self._read_group, g, statements,
                                     bind_params, each)
                   for g in groups[1:]]
        try:
            answers.append(self._read_group(groups[0], statements,
                                            bind_params, each))
        except metric_windows.MetricsUnavailable as exc:
            error = exc
        for fut in pending:
            try:
                answers.append(fut.result())
            except metric_windows.MetricsUnavailable as exc:
                error = error or exc
        if error is not None:
            raise error
        out = [None] * len(statements)
        for group, results in zip(groups, answers):
            for i, result in zip(group, results):
                out[i] = result
        return out

    def _read_group(self, idx, statements, bind_params, each):
        results = self._query([statements[i] for i in idx], bind_params)
        if each is None:
            return results
        out = []
        for i, result in zip(idx, results):
            try:
                out.append(each(i, result))
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                out.append(exc)
        return out

    def check_availability(self):
        try:
            self._call('ping', self.client.ping)
        except metric_windows.MetricsUnavailable as exc:
            LOG.warning('%s', exc)
            return 'not available'
        return 'available'

    @property
    def instance_cpu_per_vcpu(self):
        """True when instance CPU is percent of ONE vCPU (the virt form)."""
        return self.instance_metrics == 'virt'

    # -- names ----------------------------------------------------------------

    def collectd_host(self, hostname):
        """collectd's Hostname for Watcher's node ``hostname``."""
        return self.host_name_map.get(hostname, hostname)

    def _measurement_of(self, resource_type):
        if resource_type == metric_windows.INSTANCE and self.instance_metrics == 'virt':
            return cs.VIRT
        return cs.CPU

    def list_names(self, resource_type=metric_windows.COMPUTE_NODE):
        """collectd host names that have reported CPU (sorted).

        For instances, the UUIDs (the ``host`` tag). In the 'guest' form
        hosts and instances share ``cpu_value``, so both appear either way.
        """
        if resource_type not in metric_windows.METRICS_BY_TYPE:
            raise ValueError(f'unknown resource type {resource_type!r}')
        meas = self._measurement_of(resource_type)
        (raw,) = self._query(
            [f'SHOW TAG VALUES FROM "{meas}" WITH KEY = "{cs.TAG_HOST}"'],
            None)
        names = set()
        for series in raw.get('series', []):
            col = series['columns'].index('value')
            names.update(row[col] for row in series.get('values', []))
        return sorted(names)

    # -- reading --------------------------------------------------------------

    def read_mode(self, granularity):
        """'raw' or 'server': who turns samples into ``granularity`` windows.

        Raw when the windows are less than RAW_FACTOR collection intervals
        wide (see the module docstring for why).
        """
        if granularity < RAW_FACTOR * self.collectd_interval:
            return 'raw'
        return 'server'

    def cluster_means(self, resource_type, names, period, granularity,
                      metrics, end=None):
        """Host counters' mean rates over the period, computed by InfluxDB.

        For ``disk`` and ``net`` of compute nodes, one statement per metric
        asks the server for ``non_negative_derivative(max(value), 1s)``
        over two buckets of ``period`` seconds ending now: per device and
        measurement, (last sample of the period - last sample before it) /
        period, summed per host. InfluxDB still scans the raw points but
        answers one row per series, not one per sample (at 1,000 hosts:
        0.20 s against 0.44 s for the raw disk read, and no 128k rows to
        decode). It equals the mean of the per-sample rates up to one
        collectd interval over the period (about 2 % at 10 s / 600 s); a
        counter reset inside the period gives no rate (NaN). Other metrics
        or resource types: the windows' mean (base class).
        """
        if resource_type != metric_windows.COMPUTE_NODE or \
                any(m not in _HOST_COUNTERS for m in metrics):
            return super().cluster_means(resource_type, names, period,
                                         granularity, metrics, end)
        period = int(period)
        if period <= 0:
            raise ValueError(f'period must be positive, got {period}')
        e = int(math.floor(self.clock() if end is None else float(end)))
        key = ('means', resource_type, tuple(names), tuple(metrics), period,
               e)
        cached = self._windows_cache.get(key)
        if cached is not None:
            return cached
        only = (tuple(names) if len(names) <= base.NAME_FILTER_LIMIT
                else None)
        q = _QueryBuilder(e - period, e, period, only, raw=False,
                          interval=self.collectd_interval)
        statements = [q.counter(*_HOST_COUNTERS[m])[0] for m in metrics]
        decoded = self._read(statements, q.bind_params,
                             [1] * len(statements),
                             each=lambda i, raw: q.decode(raw, True))
        # One row per host: the derivative stamped at the period's start.
        per_metric = self._combine(
            [(m, [i], _sum_by_host) for i, m in enumerate(metrics)],
            decoded, e - period)
        out = {}
        for metric, per_host in per_metric.items():
            values = np.full(len(names), np.nan)
            for i, name in enumerate(names):
                _t, v = per_host.get(name, ((), ()))
                if len(v):
                    values[i] = v[0]
            out[metric] = values
        self._windows_cache[key] = out
        return out

    def fetch(self, resource_type, metrics, names, start, end, granularity,
               bulk=False):
        if resource_type not in metric_windows.METRICS_BY_TYPE:
            raise ValueError(f'unknown resource type {resource_type!r}')
        g = int(granularity)
        if g <= 0:
            raise ValueError(f'granularity must be positive, got {g}')
        start_s, end_s = int(math.floor(start)), int(math.ceil(end))
        names = None if names is None else tuple(names)
        if names is not None and not names:
            return {m: {} for m in metrics}
        q = _QueryBuilder(start_s, end_s, g, names,
                          raw=self.read_mode(g) == 'raw',
                          interval=self.collectd_interval)
        plan = []  # (metric, [statement indexes], combiner)
        statements = []  # (text, is_counter)
        for metric in metrics:
            parts = self._plan(resource_type, metric, q)
            if parts is None:
                raise ValueError(f'unknown {resource_type} metric '
                                 f'{metric!r}')
            stmts, combine = parts
            idx = []
            for st in stmts:
                if st not in statements:
                    statements.append(st)
                idx.append(statements.index(st))
            plan.append((metric, idx, combine))
        decoded = self._read(
            [text for text, _ in statements], q.bind_params,
            [2 if counter else 1 for _, counter in statements]
            if bulk else None,
            each=lambda i, raw: q.decode(raw, statements[i][1]))
        return self._combine(plan, decoded, start_s)

    def _combine(self, plan, decoded, start_s):
        """Each metric's ``{name: (t, v)}`` from its decoded statements."""
        out = {}
        for metric, idx, combine in plan:
            try:
                for i in idx:
                    if isinstance(decoded[i], Exception):
                        raise decoded[i]
                per_name = combine(*[decoded[i] for i in idx])
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise metric_windows.MetricsUnavailable(
                    f'InfluxDB at {self.url} (database {self.database!r}): '
                    f'unexpected answer for {metric}: {exc!r}') from exc
            out[metric] = {
                n: _keep_from(t, v, start_s) for n, (t, v) in per_name.items()
            }
        return out

    def _plan(self, resource_type, metric, q):
        """The statements one metric needs and how to combine their series.

        Statements are ``(InfluxQL, is_counter)``; the combiner receives each
        statement's decoded series (:meth:`_QueryBuilder.decode`), already
        one value per window and series.
        """
        if resource_type == metric_windows.INSTANCE and self.instance_metrics == 'virt':
            if metric == 'cpu':
                return (q.counter_statements(cs.VIRT, cs.TYPE_VIRT_CPU_TOTAL,
                                             (cs.TAG_INSTANCE,)),
                        q.patched(lambda r: _map(
                            _sum_by_host(r),
                            lambda v: v / cs.NS_PER_S * 100.0)))
            if metric == 'memory':
                return ([q.gauge(cs.VIRT, cs.TYPE_MEMORY,
                                 _regex_of(_VIRT_MEMORY_PARTS),
                                 (cs.TAG_TYPE_INSTANCE,))],
                        _virt_memory_mib)
            return None
        if metric == 'cpu':
            if self.cpu_form == 'percent':
                return ([q.gauge(cs.CPU, cs.TYPE_PERCENT, cs.CPU_IDLE)],
                        lambda r: _map(_by_host(r), _used_from_idle))
            return (q.counter_statements(
                cs.CPU, cs.TYPE_CPU, (cs.TAG_INSTANCE, cs.TAG_TYPE_INSTANCE)),
                q.patched(_jiffies_used_pct))
        # Bytes used: the one type instance both Watcher's host_ram_usage
        # and an instance's memory need.
        used = q.gauge(cs.MEMORY, cs.TYPE_MEMORY, cs.MEMORY_USED)
        if resource_type == metric_windows.INSTANCE:
            if metric == 'memory':
                return ([used], lambda r: _map(_by_host(r),
                                               lambda v: v / _MIB))
            return None
        if metric == 'memory':
            if self.memory_form == 'percent':
                return ([q.gauge(cs.MEMORY, cs.TYPE_PERCENT,
                                 cs.MEMORY_USED)], _by_host)
            return ([q.gauge(cs.MEMORY, cs.TYPE_MEMORY,
                             _regex_of(_MEMORY_PARTS),
                             (cs.TAG_TYPE_INSTANCE,))], _memory_pct_absolute)
        if metric == 'memory_kib':
            return ([used], lambda r: _map(_by_host(r), lambda v: v / 1024.0))
        if metric == 'load':
            return ([q.gauge(cs.LOAD, None, None)], _by_host)
        if metric in _HOST_COUNTERS:
            return (q.counter_statements(*_HOST_COUNTERS[metric]),
                    q.patched(_sum_by_host))
        return None


#: Host metrics that are collectd counters summed over devices, as
#: ``(measurements, type, extra tags, instance to exclude)``.
_HOST_COUNTERS = {
    'disk': ((cs.DISK_READ, cs.DISK_WRITE), cs.TYPE_DISK_OCTETS,
             (cs.TAG_INSTANCE,), None),
    'net': ((cs.IF_RX, cs.IF_TX), cs.TYPE_IF_OCTETS, (cs.TAG_INSTANCE,),
            cs.LOOPBACK),
}


class _QueryBuilder:
    """Builds InfluxQL for one time range / host filter, and decodes answers.

    Only constants of this module, ints and bind-parameter placeholders end
    up in the text; host names travel in :attr:`bind_params`. With ``raw``
    the statements select raw points (grouped by tags only) and
    :meth:`decode` windows them; otherwise the server windows them.
    """

    def __init__(self, start, end, granularity, names, raw=False,
                 interval=10.0):
        self.start, self.end, self.g = start, end, granularity
        self.raw = bool(raw)
        self.n_windows = max(-(-(end - start) // granularity), 0)
        self.offset = start % granularity
        # Raw counters: read far enough back that the first window's first
        # sample has a predecessor to derive its rate from.
        self.lookback = max(granularity, int(math.ceil(2 * interval)))
        self.bind_params = {}
        if names is None:
            self.host_filter = ''
        else:
            terms = []
            for i, name in enumerate(names):
                self.bind_params[f'h{i}'] = str(name)
                terms.append(f'"{cs.TAG_HOST}" = $h{i}')
            self.host_filter = ' AND (' + ' OR '.join(terms) + ')'

    def _group(self, extra_tags):
        tags = ', '.join(f'"{t}"' for t in (cs.TAG_HOST,) + tuple(extra_tags))
        if self.raw:
            return f'GROUP BY {tags}'
        return f'GROUP BY time({self.g}s, {self.offset}s), {tags} fill(none)'

    @staticmethod
    def _from(measurements):
        if isinstance(measurements, str):
            measurements = (measurements,)
        return ', '.join(f'"{m}"' for m in measurements)

    @staticmethod
    def _where_type(type_, type_instance):
        clauses = []
        if type_ is not None:
            clauses.append(f""""{cs.TAG_TYPE}" = '{type_}'""")
        if type_instance is not None:
            if type_instance.startswith('/'):
                clauses.append(f'"{cs.TAG_TYPE_INSTANCE}" =~ {type_instance}')
            else:
                clauses.append(
                    f""""{cs.TAG_TYPE_INSTANCE}" = '{type_instance}'""")
        return ''.join(c + ' AND ' for c in clauses)

    def gauge(self, measurements, type_, type_instance, extra_tags=()):
        """Mean per time bucket and host (and ``extra_tags``)."""
        select = f'"{cs.FIELD}"' if self.raw else f'mean("{cs.FIELD}")'
        return (f'SELECT {select} FROM {self._from(measurements)} '
                f'WHERE {self._where_type(type_, type_instance)}'
                f'time >= {self.start}s AND time < {self.end}s'
                f'{self.host_filter} {self._group(extra_tags)}', False)

    def counter(self, measurements, type_, extra_tags,
                exclude_instance=None):
        """Per-second rate of a raw collectd counter, per series.

        Server mode: ``non_negative_derivative(max)`` per bucket, reading
        one bucket before ``start`` so that the first bucket has a
        predecessor (it drops the negative step of a counter reset). Raw
        mode: the raw counter values from ``lookback`` before ``start``;
        :meth:`decode` derives the rates.
        """
        exclude = ''
        if exclude_instance is not None:
            exclude = f""""{cs.TAG_INSTANCE}" != '{exclude_instance}' AND """
        if self.raw:
            select, since = f'"{cs.FIELD}"', self.start - self.lookback
        else:
            select = f'non_negative_derivative(max("{cs.FIELD}"), 1s)'
            since = self.start - self.g
        return (f'SELECT {select} '
                f'FROM {self._from(measurements)} '
                f'WHERE {self._where_type(type_, None)}{exclude}'
                f'time >= {since}s AND time < {self.end}s'
                f'{self.host_filter} {self._group(extra_tags)}', True)

    @property
    def last_bucket(self):
        """Start of the newest bucket of the range (usually still filling)."""
        return self.start + (self.end - 1 - self.start) // self.g * self.g

    def counter_last(self, measurement, type_, extra_tags,
                     exclude_instance=None):
        """Exact rate of the newest bucket, for one measurement (server mode).

        ``derivative(max)`` divides by the full bucket width, which biases
        the newest, still-filling bucket low by the share of it not yet
        elapsed. Here the mean of the per-sample rates over that bucket
        alone (a cheap subquery over two buckets) replaces it.
        """
        exclude = ''
        if exclude_instance is not None:
            exclude = f""""{cs.TAG_INSTANCE}" != '{exclude_instance}' AND """
        tags = ', '.join(f'"{t}"' for t in (cs.TAG_HOST,) + tuple(extra_tags))
        last = self.last_bucket
        return (f'SELECT mean("rate") FROM ('
                f'SELECT non_negative_derivative("{cs.FIELD}", 1s) AS "rate" '
                f'FROM "{measurement}" '
                f'WHERE {self._where_type(type_, None)}{exclude}'
                f'time >= {last - self.g}s AND time < {self.end}s'
                f'{self.host_filter} GROUP BY {tags}) '
                f'WHERE time >= {last}s AND time < {self.end}s '
                f'{self._group(extra_tags)}', False)

    def counter_statements(self, measurements, type_, extra_tags,
                           exclude_instance=None):
        """All statements of a counter rate; combine with :meth:`patched`.

        Server mode: the full range, then the newest bucket per
        measurement. Raw mode: one statement (rates of raw samples are
        exact in every window, the newest included).
        """
        if isinstance(measurements, str):
            measurements = (measurements,)
        main = [self.counter(measurements, type_, extra_tags,
                             exclude_instance)]
        if self.raw:
            return main
        return main + [self.counter_last(m, type_, extra_tags,
                                         exclude_instance)
                       for m in measurements]

    def patched(self, combine):
        """The combiner for :meth:`counter_statements`' decoded results."""
        return combine if self.raw else _patched(self.last_bucket, combine)

    def decode(self, raw, is_counter):
        """One statement's answer as ``[(name, tags, times, values)]``.

        One value per window and series: the server's (server mode), or the
        mean of the raw samples (or, for counters, of the rates between
        consecutive samples) in each window (raw mode). Times are window
        starts; windows without a value are left out, as ``fill(none)``
        does.
        """
        keys, sid, t, v = _flatten(raw)
        if self.raw:
            if is_counter:
                sid, t, v = _rates(sid, t, v)
            sid, t, v = _window_means(sid, t, v, self.start, self.g,
                                      self.n_windows)
        else:
            ok = ~np.isnan(v)
            sid, t, v = sid[ok], t[ok], v[ok]
        return _split(keys, sid, t, v)


# -- decoding answers (pure functions) --------------------------------------

def _flatten(raw):
    """All series of one statement's answer in flat arrays.

    :returns: ``(keys, sid, t, v)``: ``keys[i]`` is series i's
        ``(name, tags)``; ``sid``, ``t``, ``v`` hold every row (series index,
        time in seconds, value as float, NaN for null), in answer order.
    """
    if raw.get('error'):
        raise ValueError(raw['error'])
    if raw.get('partial'):
        raise ValueError('InfluxDB returned a partial answer (max-row-limit '
                         'reached?); refusing to use truncated series')
    keys, lengths, rows = [], [], []
    for s in raw.get('series', []) or []:
        if s.get('partial'):
            raise ValueError(f'series {s.get("name")} {s.get("tags")} is '
                             f'partial (max-row-limit reached?)')
        values = s.get('values') or []
        if values and len(values[0]) != 2:
            raise ValueError(f'expected (time, value) rows, got columns '
                             f'{s.get("columns")}')
        keys.append((s.get('name'), s.get('tags') or {}))
        lengths.append(len(values))
        rows.append(values)
    arr = np.array(list(itertools.chain.from_iterable(rows)),
                   dtype=float).reshape(-1, 2)
    sid = np.repeat(np.arange(len(keys)), lengths)
    return keys, sid, arr[:, 0], arr[:, 1]


def _sorted_by_series_time(sid, t, v):
    """Rows ordered by (series, time); InfluxDB already sends them so."""
    if sid.size > 1:
        step_sid = np.diff(sid)
        if (step_sid < 0).any() or \
                ((step_sid == 0) & (np.diff(t) < 0)).any():
            order = np.lexsort((t, sid))
            return sid[order], t[order], v[order]
    return sid, t, v


def _rates(sid, t, v):
    """Per-second rates between consecutive samples of each counter series.

    Each rate is stamped with the later sample's time (as InfluxDB's
    derivatives are). A drop in value is a counter reset (reboot, wrap): it
    gives no rate, never a negative one; nor do repeated timestamps.
    """
    sid, t, v = _sorted_by_series_time(sid, t, v)
    dt, dv = np.diff(t), np.diff(v)
    with np.errstate(invalid='ignore', divide='ignore'):
        rate = dv / dt
        ok = (sid[1:] == sid[:-1]) & (dt > 0) & (dv >= 0)
    return sid[1:][ok], t[1:][ok], rate[ok]


def _window_means(sid, t, v, start, g, n_windows):
    """Mean of each series' samples per ``g``-second window from ``start``.

    :returns: ``(sid, window start, mean)`` of every non-empty window,
        ordered by series then time; NaN samples and samples outside the
        ``n_windows`` windows are ignored.
    """
    w = np.floor((t - start) / g)
    ok = ~np.isnan(v) & (w >= 0) & (w < n_windows)
    sid, w, v = sid[ok], w[ok].astype(np.int64), v[ok]
    key = sid.astype(np.int64) * max(n_windows, 1) + w
    if key.size > 1 and (np.diff(key) < 0).any():
        order = np.argsort(key, kind='stable')
        key, sid, w, v = key[order], sid[order], w[order], v[order]
    if key.size == 0:
        return sid, w.astype(float), v
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    sums = np.add.reduceat(v, first)
    counts = np.diff(np.r_[first, key.size])
    return sid[first], start + g * w[first].astype(float), sums / counts


def _split(keys, sid, t, v):
    """``[(name, tags, t, v)]`` of the series with at least one row."""
    bounds = np.searchsorted(sid, np.arange(len(keys) + 1))
    out = []
    for i, (name, tags) in enumerate(keys):
        a, b = bounds[i], bounds[i + 1]
        if b > a:
            out.append((name, tags, t[a:b], v[a:b]))
    return out


# -- combining decoded series (pure functions) ------------------------------

def _series(decoded):
    """Yield (tags dict, times array, values array) of one statement."""
    for _name, tags, t, v in decoded:
        yield tags, t, v


def _series_key(name, tags):
    return name, tuple(sorted(tags.items()))


def _patched(last, combine):
    """A combiner for server-mode counter_statements() results.

    Replaces each series' newest-bucket row (at ``last``) of the full-range
    statement with the exact one of the newest-bucket statements, then runs
    ``combine``.
    """
    def run(main, *lasts):
        series = {}
        for name, tags, t, v in main:
            keep = t != last
            series[_series_key(name, tags)] = [name, tags, t[keep], v[keep]]
        for decoded in lasts:
            for name, tags, t, v in decoded:
                pick = t == last
                key = _series_key(name, tags)
                if key in series:
                    _n, _tags, t0, v0 = series[key]
                    series[key][2:] = [np.concatenate([t0, t[pick]]),
                                       np.concatenate([v0, v[pick]])]
                else:
                    series[key] = [name, tags, t[pick], v[pick]]
        return combine([tuple(s) for s in series.values()])
    return run


def _by_host(raw):
    """One series per host: {host: (t, v)} (statements grouped by host)."""
    out = {}
    for tags, t, v in _series(raw):
        host = tags.get(cs.TAG_HOST, '')
        if host in out:  # several measurements: concatenate then average
            out[host] = _sum_aligned([out[host], (t, v)], mean=True)
        else:
            out[host] = (t, v)
    return out


def _group_by_host(raw):
    """{host: [(tags, t, v), ...]} of every sub-series of each host."""
    out = {}
    for tags, t, v in _series(raw):
        out.setdefault(tags.get(cs.TAG_HOST, ''), []).append((tags, t, v))
    return out


def _sum_aligned(parts, mean=False):
    """Sum (or mean) several (t, v) series on the union of their times."""
    t = np.concatenate([p[0] for p in parts])
    v = np.concatenate([p[1] for p in parts])
    if t.size == 0:
        return t, v
    times, inv = np.unique(t, return_inverse=True)
    sums = np.bincount(inv, weights=v, minlength=times.size)
    if mean:
        sums = sums / np.bincount(inv, minlength=times.size)
    return times, sums


def _sum_by_host(raw):
    """Rates of several devices/measurements summed per host."""
    return {host: _sum_aligned([(t, v) for _tags, t, v in parts])
            for host, parts in _group_by_host(raw).items()}


def _map(per_name, func):
    return {n: (t, func(v)) for n, (t, v) in per_name.items()}


def _keep_from(t, v, start):
    keep = t >= start
    return t[keep], v[keep]


def _used_from_idle(idle_pct):
    """100 - idle, clipped: collectd's percentages can sum to 100 + 1e-14."""
    return np.clip(100.0 - idle_pct, 0.0, 100.0)


def _jiffies_used_pct(raw):
    """100 * (1 - idle rate / all states' rate), over all of a host's CPUs."""
    out = {}
    for host, parts in _group_by_host(raw).items():
        idle = [(t, v) for tags, t, v in parts
                if tags.get(cs.TAG_TYPE_INSTANCE) == cs.CPU_IDLE]
        if not idle:
            continue
        t_all, v_all = _sum_aligned([(t, v) for _tags, t, v in parts])
        t_idle, v_idle = _sum_aligned(idle)
        common, i_all, i_idle = np.intersect1d(t_all, t_idle,
                                               return_indices=True)
        total = v_all[i_all]
        ok = total > 0
        out[host] = (common[ok],
                     100.0 * (1.0 - v_idle[i_idle][ok] / total[ok]))
    return out


def _by_type_instance(parts):
    return {tags.get(cs.TAG_TYPE_INSTANCE, ''): (t, v)
            for tags, t, v in parts}


def _memory_pct_absolute(decoded):
    """Percent used from the absolute form: used / sum of the parts."""
    out = {}
    for host, parts in _group_by_host(decoded).items():
        by_ti = _by_type_instance(parts)
        used = by_ti.get(cs.MEMORY_USED)
        if used is None:
            continue
        t_all, v_all = _sum_aligned(list(by_ti.values()))
        common, i_all, i_used = np.intersect1d(t_all, used[0],
                                               return_indices=True)
        ok = v_all[i_all] > 0
        out[host] = (common[ok],
                     100.0 * used[1][i_used][ok] / v_all[i_all][ok])
    return out


def _virt_memory_mib(raw):
    """Guest memory in use (MiB): available - unused, else rss."""
    out = {}
    for host, parts in _group_by_host(raw).items():
        by_ti = _by_type_instance(parts)
        avail = by_ti.get(cs.VIRT_MEMORY_AVAILABLE)
        unused = by_ti.get(cs.VIRT_MEMORY_UNUSED)
        if avail is not None and unused is not None:
            common, ia, iu = np.intersect1d(avail[0], unused[0],
                                            return_indices=True)
            out[host] = (common, (avail[1][ia] - unused[1][iu]) / _MIB)
        elif cs.VIRT_MEMORY_RSS in by_ti:
            t, v = by_ti[cs.VIRT_MEMORY_RSS]
            out[host] = (t, v / _MIB)
    return out


@contextlib.contextmanager
def _gc_paused():
    """Pause Python's cyclic garbage collector (nesting-safe).

    An answer decodes to 10^5-10^6 small lists and floats, none in a cycle.
    While they are alive, every collection the allocations trigger walks
    all of them (about 0.2 s per full pass at 1,000 hosts) and frees
    nothing; reference counting frees them anyway. The collector is paused
    while an answer is fetched and turned into arrays, and restored after.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _balanced_groups(weights, k):
    """Indexes of ``weights`` in at most ``k`` groups of similar total.

    Greedy: heaviest first, each into the lightest group so far (ties: the
    earlier group, the earlier index). Empty groups are dropped; indexes
    within a group keep their order.
    """
    groups = [[] for _ in range(max(1, min(k, len(weights))))]
    totals = [0] * len(groups)
    for i in sorted(range(len(weights)), key=lambda i: -weights[i]):
        g = totals.index(min(totals))
        groups[g].append(i)
        totals[g] += weights[i]
    return [sorted(g) for g in groups if g]


def _safe_url(url):
    """``url`` without user information, query or fragment (for messages)."""
    p = urllib.parse.urlsplit(str(url))
    host = p.hostname or ''
    if ':' in host:
        host = f'[{host}]'
    netloc = host + (f':{p.port}' if p.port else '')
    return urllib.parse.urlunsplit((p.scheme, netloc, p.path, '', ''))
