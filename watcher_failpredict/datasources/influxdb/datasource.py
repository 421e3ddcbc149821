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

Every read ends within a wall-clock deadline: the one the strategy starts
for a whole audit (:meth:`~.base.WindowsDataSource.start_read_deadline`,
``[failpredict] metrics_read_deadline`` seconds shared by all of the
audit's reads), else one of that many seconds per read. When it passes,
the read raises :exc:`~.client.InfluxDBDeadlineExceeded` saying which
read (resource type, metrics, how many names, the request) did not end.

The HTTP exchange (POST /query, MessagePack answers, persistent
connections, retries, credentials, deadlines) is :mod:`.client`'s; the
statements are :mod:`.query`'s, the decoding of answers :mod:`.decode`'s.
Most of a read's time is influxd producing the answer (about 1.5 s of its
CPU per host read at 1,000 hosts), hence the two concurrent requests:
influxd answers on both cores, and each answer is decoded in the thread
that fetched it while the server still computes the other. Python's cyclic
garbage collector is paused while answers are fetched and turned into
arrays (:func:`.decode.gc_paused`).

Tag values (host names, instance UUIDs) only ever reach the server as bind
parameters; the only numbers interpolated into statements are times and
durations this module computes itself.

Units returned (see ``HOST_METRICS`` / ``INSTANCE_METRICS`` of
:mod:`~watcher_failpredict.datasources.windows`):

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

import collections
import math

import numpy as np
from oslo_log import log

from watcher_failpredict.conf import CONF
from watcher_failpredict.datasources import base
from watcher_failpredict.datasources import collectd_schema as cs
from watcher_failpredict.datasources import deadline as deadline_mod
from watcher_failpredict.datasources.influxdb import client as influx_client
from watcher_failpredict.datasources.influxdb import decode
from watcher_failpredict.datasources.influxdb import query
from watcher_failpredict.datasources import windows as metric_windows

LOG = log.getLogger(__name__)

NAME = 'failpredict_influxdb'

_MEMORY_PARTS = ('used', 'free', 'buffered', 'cached', 'slab_recl',
                 'slab_unrecl')
_VIRT_MEMORY_PARTS = (cs.VIRT_MEMORY_AVAILABLE, cs.VIRT_MEMORY_UNUSED,
                      cs.VIRT_MEMORY_RSS)

#: Granularities below RAW_FACTOR x collectd_interval are read raw and
#: windowed locally (about 1-3 samples per window: the server would move as
#: many points after an expensive GROUP BY time); coarser ones are reduced by
#: the server, which then moves several times fewer points.
RAW_FACTOR = 3
MEMORY_FORMS = ('percent', 'absolute')
#: Every bulk read (``cluster_windows``) of two or more statements sends
#: them as this many concurrent requests (balanced by weight, see
#: query.balanced_groups), whatever the number of names: the server answers on
#: two cores while the client decodes, and an audit's request count depends
#: on the metrics read, never on the size of the cluster. Watcher's
#: per-resource helpers stay one request per call.
QUERY_SPLIT = 2


def _option(value, option):
    """``value``, or the ``[failpredict]`` option's when it is None."""
    return getattr(CONF.failpredict, option) if value is None else value


def configured_client(url=None, database=None, username=None, password=None,
                      verify_ssl=None, ca_file=None, timeout=None,
                      retries=None, response_format='msgpack'):
    """An :class:`~.client.InfluxDBClient` of the ``[failpredict]`` options.

    Each keyword argument given overrides its option (``influxdb_url``,
    ``influxdb_database``, ...); the datasource and the risk recorder both
    connect through it.
    """
    return influx_client.InfluxDBClient(
        _option(url, 'influxdb_url'),
        database=_option(database, 'influxdb_database'),
        username=_option(username, 'influxdb_username'),
        password=_option(password, 'influxdb_password'),
        verify_ssl=_option(verify_ssl, 'influxdb_verify_ssl'),
        ca_file=_option(ca_file, 'influxdb_ca_file'),
        timeout=float(_option(timeout, 'influxdb_timeout')),
        retries=int(_option(retries, 'influxdb_retries')),
        response_format=response_format)


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
                 query_split=QUERY_SPLIT, read_deadline=None):
        super().__init__()
        self.read_deadline = deadline_mod.checked_seconds(
            _option(read_deadline, 'metrics_read_deadline'), 'read_deadline')
        #: The HTTP client every read goes through (ping included).
        self.client = configured_client(
            url=url, database=database, username=username, password=password,
            verify_ssl=verify_ssl, ca_file=ca_file, timeout=timeout,
            retries=retries, response_format=response_format)
        self.url = self.client.url
        self.database = self.client.database
        self.cpu_form = _option(cpu_form, 'cpu_form')
        if self.cpu_form not in cs.CPU_FORMS:
            raise ValueError(f'cpu_form={self.cpu_form!r}; expected one of '
                             f'{cs.CPU_FORMS}')
        self.instance_metrics = _option(instance_metrics, 'instance_metrics')
        if self.instance_metrics not in cs.INSTANCE_FORMS:
            raise ValueError(f'instance_metrics={self.instance_metrics!r}; '
                             f'expected one of {cs.INSTANCE_FORMS}')
        self.memory_form = _option(memory_form, 'memory_form')
        if self.memory_form not in MEMORY_FORMS:
            raise ValueError(f'memory_form={self.memory_form!r}; expected '
                             f'one of {MEMORY_FORMS}')
        self.collectd_interval = float(_option(collectd_interval,
                                               'collectd_interval'))
        if not self.collectd_interval > 0:
            raise ValueError(f'collectd_interval={self.collectd_interval!r} '
                             f'must be positive')
        if isinstance(query_split, bool) or not isinstance(query_split, int) \
                or query_split < 1:
            raise ValueError(f'query_split={query_split!r} must be an '
                             f'integer >= 1')
        self.query_split = query_split
        self._pool = None
        self.host_name_map = dict(
            _option(host_name_map, 'host_name_map') or {})

    def __repr__(self):
        return (f'{type(self).__name__}(url={self.url!r}, '
                f'database={self.database!r})')

    @property
    def request_count(self):
        """HTTP requests made so far (each retry attempt counts)."""
        return self.client.request_count

    def close(self):
        """Close the persistent query connections (they reopen on use)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.client.close()

    # -- query transport ------------------------------------------------------

    def _query(self, statements, bind_params, deadline=None):
        """Send ``statements`` in one request; a list of raw result dicts."""
        with decode.gc_paused():
            return self.client.query(statements, bind_params,
                                     deadline=deadline)

    def _timed_out(self, exc, what):
        """``exc`` (a deadline passed) saying which read it stopped."""
        return type(exc)(f'the read of {what} did not end in time: {exc}')

    def _read(self, statements, bind_params, weights=None, each=None,
              what='metrics'):
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
        :param what: the read, as a deadline's message names it
        :raises InfluxDBDeadlineExceeded: :meth:`current_deadline` passed
            (every group shares it)
        """
        deadline = self.current_deadline()
        # One pause for every group and its decoding, in all threads.
        try:
            with decode.gc_paused():
                return self._read_paused(statements, bind_params, weights,
                                         each, deadline)
        except influx_client.InfluxDBDeadlineExceeded as exc:
            raise self._timed_out(exc, what) from exc

    def _read_paused(self, statements, bind_params, weights, each,
                     deadline):
        groups = []
        if weights is not None and self.query_split > 1:
            groups = query.balanced_groups(weights, self.query_split)
        if len(groups) < 2:
            return self._read_group(range(len(statements)), statements,
                                    bind_params, each, deadline)
        if self._pool is None:
            from concurrent import futures
            self._pool = futures.ThreadPoolExecutor(
                self.query_split - 1, thread_name_prefix='influxdb-query')
        answers, error = [], None
        pending = [self._pool.submit(self._read_group, g, statements,
                                     bind_params, each, deadline)
                   for g in groups[1:]]
        try:
            answers.append(self._read_group(groups[0], statements,
                                            bind_params, each, deadline))
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

    def _read_group(self, idx, statements, bind_params, each, deadline=None):
        results = self._query([statements[i] for i in idx], bind_params,
                              deadline)
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
            self.client.ping()
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
        if resource_type == metric_windows.INSTANCE and \
                self.instance_metrics == 'virt':
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
        (raw,) = self._read(
            [f'SHOW TAG VALUES FROM "{meas}" WITH KEY = "{cs.TAG_HOST}"'],
            None, what=f'the {resource_type} names')
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
                any(m not in query.HOST_COUNTERS for m in metrics):
            return super().cluster_means(resource_type, names, period,
                                         granularity, metrics, end)
        period = int(period)
        if period <= 0:
            raise ValueError(f'period must be positive, got {period}')
        e = int(math.floor(self.clock() if end is None else float(end)))
        key = ('means', resource_type, tuple(names), tuple(metrics), period,
               e)

        def read_means():
            only = (tuple(names) if len(names) <= base.NAME_FILTER_LIMIT
                    else None)
            q = query.QueryBuilder(e - period, e, period, only, raw=False,
                                   interval=self.collectd_interval)
            statements = [q.counter(*query.HOST_COUNTERS[m])[0]
                          for m in metrics]
            decoded = self._read(
                statements, q.bind_params, [1] * len(statements),
                each=lambda i, raw: q.decode(raw, True),
                what=_read_name(resource_type, metrics, names,
                                period, 'mean rate of '))
            # One row per host: the derivative stamped at the period's
            # start.
            per_metric = self._combine(
                [(m, [i], decode.sum_by_host)
                 for i, m in enumerate(metrics)],
                decoded, e - period)
            out = {}
            for metric, per_host in per_metric.items():
                values = np.full(len(names), np.nan)
                for i, name in enumerate(names):
                    _t, v = per_host.get(name, ((), ()))
                    if len(v):
                        values[i] = v[0]
                out[metric] = values
            return out

        return self.cached(key, read_means)

    def fetch(self, resource_type, metrics, names, start, end, granularity,
              bulk=False):
        read = self._statements(resource_type, metrics, names, start, end,
                                granularity)
        if read is None:
            return {m: {} for m in metrics}
        decoded = self._read(
            read.texts, read.q.bind_params, read.weights if bulk else None,
            each=read.decode, what=read.what)
        return self._combine(read.plan, decoded, read.start)

    def fetch_together(self, fetches):
        """Every read of ``fetches`` in one request, whatever their
        number: their statements joined, each read's names bound under its
        own prefix (``$r0h0``, ``$r1h0``, ...). For a few small reads
        needed at once (planned mode's); a large read is better sent by
        :meth:`fetch`, split over concurrent requests.
        """
        reads = [self._statements(*f, param_prefix=f'r{k}h')
                 for k, f in enumerate(fetches)]
        sent = [r for r in reads if r is not None]
        texts, params, owner = [], {}, []
        for r in sent:
            params.update(r.q.bind_params)
            owner.extend((r, i) for i in range(len(r.texts)))
            texts.extend(r.texts)
        decoded = self._read(
            texts, params, each=lambda i, raw: owner[i][0].decode(
                owner[i][1], raw),
            what='; '.join(r.what for r in sent)) if sent else []
        out, at = [], 0
        for f, r in zip(fetches, reads):
            if r is None:
                out.append({m: {} for m in f[1]})
                continue
            n = len(r.texts)
            out.append(self._combine(r.plan, decoded[at:at + n], r.start))
            at += n
        return out

    def _statements(self, resource_type, metrics, names, start, end,
                    granularity, param_prefix='h'):
        """The statements of one :meth:`fetch`, as a :class:`_Statements`;
        None when ``names`` is empty (nothing to read).
        """
        if resource_type not in metric_windows.METRICS_BY_TYPE:
            raise ValueError(f'unknown resource type {resource_type!r}')
        g = int(granularity)
        if g <= 0:
            raise ValueError(f'granularity must be positive, got {g}')
        start_s, end_s = int(math.floor(start)), int(math.ceil(end))
        names = None if names is None else tuple(names)
        if names is not None and not names:
            return None
        q = query.QueryBuilder(start_s, end_s, g, names,
                               raw=self.read_mode(g) == 'raw',
                               interval=self.collectd_interval,
                               param_prefix=param_prefix)
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
        return _Statements(
            q, [text for text, _ in statements],
            [counter for _, counter in statements], plan, start_s,
            _read_name(resource_type, metrics, names, end_s - start_s))

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
                n: decode.keep_from(t, v, start_s)
                for n, (t, v) in per_name.items()
            }
        return out

    def _plan(self, resource_type, metric, q):
        """The statements one metric needs and how to combine their series.

        Statements are ``(InfluxQL, is_counter)``; the combiner receives each
        statement's decoded series (:meth:`query.QueryBuilder.decode`), already
        one value per window and series.
        """
        if resource_type == metric_windows.INSTANCE and \
                self.instance_metrics == 'virt':
            if metric == 'cpu':
                return (q.counter_statements(cs.VIRT, cs.TYPE_VIRT_CPU_TOTAL,
                                             (cs.TAG_INSTANCE,)),
                        q.patched(lambda r: decode.map_values(
                            decode.sum_by_host(r),
                            lambda v: v / cs.NS_PER_S * 100.0)))
            if metric == 'memory':
                return ([q.gauge(cs.VIRT, cs.TYPE_MEMORY,
                                 query.regex_of(_VIRT_MEMORY_PARTS),
                                 (cs.TAG_TYPE_INSTANCE,))],
                        decode.virt_memory_mib)
            return None
        if metric == 'cpu':
            if self.cpu_form == 'percent':
                return ([q.gauge(cs.CPU, cs.TYPE_PERCENT, cs.CPU_IDLE)],
                        lambda r: decode.map_values(decode.by_host(r),
                                                    decode.used_from_idle))
            return (q.counter_statements(
                cs.CPU, cs.TYPE_CPU, (cs.TAG_INSTANCE, cs.TAG_TYPE_INSTANCE)),
                q.patched(decode.jiffies_used_pct))
        # Bytes used: the one type instance both Watcher's host_ram_usage
        # and an instance's memory need.
        used = q.gauge(cs.MEMORY, cs.TYPE_MEMORY, cs.MEMORY_USED)
        if resource_type == metric_windows.INSTANCE:
            if metric == 'memory':
                return ([used], lambda r: decode.map_values(
                    decode.by_host(r), lambda v: v / decode.MIB))
            return None
        if metric == 'memory':
            if self.memory_form == 'percent':
                return ([q.gauge(cs.MEMORY, cs.TYPE_PERCENT,
                                 cs.MEMORY_USED)], decode.by_host)
            return ([q.gauge(cs.MEMORY, cs.TYPE_MEMORY,
                             query.regex_of(_MEMORY_PARTS),
                             (cs.TAG_TYPE_INSTANCE,))],
                    decode.memory_pct_absolute)
        if metric == 'memory_kib':
            return ([used], lambda r: decode.map_values(
                decode.by_host(r), lambda v: v / 1024.0))
        if metric == 'load':
            return ([q.gauge(cs.LOAD, None, None)], decode.by_host)
        if metric in query.HOST_COUNTERS:
            return (q.counter_statements(*query.HOST_COUNTERS[metric]),
                    q.patched(decode.sum_by_host))
        return None


class _Statements(collections.namedtuple(
        '_Statements', 'q texts counters plan start what')):
    """One fetch's InfluxQL: the builder ``q`` (its bind parameters),
    the statements' texts and whether each reads a counter, the plan
    that combines their answers into metrics, the first second read, and
    how a deadline's message names the read.
    """

    @property
    def weights(self):
        """Each statement's expected cost (a counter's is two gauges')."""
        return [2 if c else 1 for c in self.counters]

    def decode(self, i, raw):
        """Statement ``i``'s raw answer, one value per window and series."""
        return self.q.decode(raw, self.counters[i])


def _read_name(resource_type, metrics, names, seconds, kind=''):
    """How a deadline's message names a read, e.g. "compute_node cpu,
    memory of 3 name(s) over 660 s".
    """
    who = 'every name' if names is None else f'{len(names)} name(s)'
    return (f'{resource_type} {kind}{", ".join(metrics)} of {who} over '
            f'{seconds} s')
