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

"""The Prometheus datasource: node_exporter and libvirt exporter metrics.

The same bulk interface as the InfluxDB datasource, on the same base
(:class:`~watcher_failpredict.datasources.base.WindowsDataSource`):
``cluster_windows`` / ``cluster_means`` / ``read_history`` and Watcher's
per-resource helpers, all served by :meth:`PrometheusDataSource.fetch`,
in the same metric names, units and window alignment, so that the
strategy, the scoring engine and training run unchanged above it.

Every :meth:`~PrometheusDataSource.fetch` is **one range query per
metric** over all hosts (or instances) at once (:mod:`.query`), whatever
the number of names; a bulk read sends its queries concurrently
(``concurrency`` threads, each with its own connection). An audit reads
3 host metrics as windows, 2 as means (one instant query each, computed as
the InfluxDB datasource computes them: :meth:`~PrometheusDataSource.
cluster_means`) and 2 instance metrics: 7 requests at any cluster size.
A window range of more than :data:`MAX_STEPS` steps (a long training
history read in one piece) is split in as many queries as it needs:
Prometheus refuses more than 11,000 points per series.

Missing data: a name without samples in a window gets NaN there (as with
InfluxDB). A bulk read in which a metric has no series at all costs one
more request, an instant query asking which of the Prometheus metrics it
needs exist with the host (instance) label; when some are absent, the read
fails with :exc:`~watcher_failpredict.datasources.windows.MetricsUnavailable`
naming them, the label and the exporter that provides them.

Units: as :mod:`~watcher_failpredict.datasources.windows` (and
``memory_kib`` for Watcher's ``host_ram_usage``); instance ``cpu`` is
percent of ONE vCPU (libvirt's CPU time, as collectd's virt plugin), so
:attr:`~PrometheusDataSource.instance_cpu_per_vcpu` is true and the
strategy divides by the flavor's vCPUs.
"""

import math

import numpy as np
from oslo_log import log

from watcher_failpredict.conf import CONF
from watcher_failpredict.datasources import base
from watcher_failpredict.datasources.prometheus import client as prom_client
from watcher_failpredict.datasources.prometheus import decode
from watcher_failpredict.datasources.prometheus import query
from watcher_failpredict.datasources import windows as metric_windows

LOG = log.getLogger(__name__)

NAME = 'failpredict_prometheus'

#: Steps per range query at most (Prometheus refuses 11,000 points).
MAX_STEPS = 10000
#: Concurrent requests of a bulk read (one per metric, at most this many at
#: once).
CONCURRENCY = 4
#: Which exporter provides the metrics of each resource type (messages).
EXPORTERS = {
    'exporters': {metric_windows.COMPUTE_NODE: 'node_exporter',
                  metric_windows.INSTANCE: 'the libvirt exporter'},
    'collectd': {
        metric_windows.COMPUTE_NODE:
            'collectd\'s write_prometheus (cpu plugin with '
            'ValuesPercentage true, memory, load, disk, interface)',
        metric_windows.INSTANCE:
            'collectd\'s write_prometheus (virt plugin, HostnameFormat '
            'uuid)'},
}


def _option(value, option):
    """``value``, or the ``[failpredict]`` option's when it is None."""
    return getattr(CONF.failpredict, option) if value is None else value


def configured_client(url=None, timeout=None, retries=None, verify_ssl=None,
                      ca_file=None, token=None, headers=None,
                      auth_headers=None, get_only=False):
    """A :class:`~.client.PrometheusClient` of the ``[failpredict]`` options.

    Each keyword argument given overrides its option (``prometheus_url``,
    ``prometheus_timeout``, ...).
    """
    return prom_client.PrometheusClient(
        _option(url, 'prometheus_url'),
        timeout=_option(timeout, 'prometheus_timeout'),
        retries=_option(retries, 'prometheus_retries'),
        verify_ssl=_option(verify_ssl, 'prometheus_verify_ssl'),
        ca_file=_option(ca_file, 'prometheus_ca_file'),
        token=token, headers=headers, auth_headers=auth_headers,
        get_only=get_only)


class PrometheusDataSource(base.WindowsDataSource):
    """Watcher datasource reading exporter metrics from Prometheus.

    Every argument left None takes its ``[failpredict]`` option
    (``prometheus_url``, ``prometheus_host_label``,
    ``prometheus_instance_label``, ``host_name_map``,
    ``prometheus_scrape_interval``, ``prometheus_schema``,
    ``prometheus_timeout``, ...).
    ``token`` / ``headers`` / ``auth_headers`` (not options) travel with
    every request, for a proxy such as Aetos (:mod:`.aetos`).
    """

    NAME = NAME

    def __init__(self, url=None, host_label=None, instance_label=None,
                 host_name_map=None, scrape_interval=None, timeout=None,
                 retries=None, verify_ssl=None, ca_file=None, token=None,
                 headers=None, concurrency=CONCURRENCY, auth_headers=None,
                 schema=None, instant_only=False):
        super().__init__()
        #: Instant queries only, sent as GET (Aetos 3.0.0 serves nothing
        #: else): windows come from subqueries (:meth:`.query.QueryBuilder.
        #: subquery`), one request per metric as with range queries.
        self.instant_only = bool(instant_only)
        #: The HTTP client every read goes through.
        self.client = configured_client(
            url=url, timeout=timeout, retries=retries, verify_ssl=verify_ssl,
            ca_file=ca_file, token=token, headers=headers,
            auth_headers=auth_headers, get_only=self.instant_only)
        self.url = self.client.url
        self.host_label = query.label_name(
            _option(host_label, 'prometheus_host_label'),
            'prometheus_host_label')
        self.instance_label = query.label_name(
            _option(instance_label, 'prometheus_instance_label'),
            'prometheus_instance_label')
        #: Which exporters' metrics are read: 'exporters' (node_exporter
        #: and the libvirt exporter) or 'collectd' (write_prometheus).
        self.schema = query.schema_name(_option(schema, 'prometheus_schema'))
        self.scrape_interval = float(_option(scrape_interval,
                                             'prometheus_scrape_interval'))
        if not self.scrape_interval > 0:
            raise ValueError(f'scrape_interval={self.scrape_interval!r} '
                             f'must be positive')
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) \
                or concurrency < 1:
            raise ValueError(f'concurrency={concurrency!r} must be an '
                             f'integer >= 1')
        self.concurrency = concurrency
        self.host_name_map = dict(
            _option(host_name_map, 'host_name_map') or {})
        self._pool = None

    def __repr__(self):
        return f'{type(self).__name__}(url={self.url!r})'

    @property
    def request_count(self):
        """HTTP requests made so far (each retry attempt counts)."""
        return self.client.request_count

    def close(self):
        """Close the connections and the query threads (they reopen)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.client.close()

    def check_availability(self):
        try:
            self.client.ready()
        except metric_windows.MetricsUnavailable as exc:
            LOG.warning('%s', exc)
            return 'not available'
        return 'available'

    #: libvirt's CPU time: percent of ONE vCPU (see the module docstring).
    instance_cpu_per_vcpu = True

    # -- names ----------------------------------------------------------------

    def collectd_host(self, hostname):
        """The host label's value for Watcher's node ``hostname``.

        (The name is the datasources' common interface, from the collectd
        backend: the strategy maps every node through it.)
        """
        return self.host_name_map.get(hostname, hostname)

    def label_of(self, resource_type):
        if resource_type == metric_windows.INSTANCE:
            return self.instance_label
        if resource_type == metric_windows.COMPUTE_NODE:
            return self.host_label
        raise ValueError(f'unknown resource type {resource_type!r}')

    #: Seconds before ``clock()`` in which list_names looks for series.
    list_period = 3600

    def list_names(self, resource_type=metric_windows.COMPUTE_NODE,
                   period=None):
        """Host label values (instance UUIDs) with CPU samples in the last
        ``period`` seconds (default: ``list_period``), sorted.
        """
        period = self.list_period if period is None else period
        label = self.label_of(resource_type)
        metric = query.LIST_METRIC[self.schema][resource_type]
        promql = (f'group by ({label}) (last_over_time('
                  f'{metric}{{{label}!=""}}[{int(period)}s]))')
        data = self.client.query(promql, at=self.clock())
        try:
            return sorted(n for n in decode.vector_names(data, label) if n)
        except (KeyError, TypeError, ValueError) as exc:
            raise metric_windows.MetricsUnavailable(
                f'Prometheus at {self.url}: unexpected answer listing '
                f'{resource_type} names: {exc!r}') from exc

    # -- reading --------------------------------------------------------------

    def _run(self, jobs, concurrent):
        """Run ``jobs`` (callables); their results in order.

        Concurrently (at most ``concurrency`` at once) when asked; every
        job is waited for before the first error is raised.
        """
        if not concurrent or len(jobs) < 2 or self.concurrency < 2:
            return [job() for job in jobs]
        if self._pool is None:
            from concurrent import futures
            self._pool = futures.ThreadPoolExecutor(
                self.concurrency, thread_name_prefix='prometheus-query')
        pending = [self._pool.submit(job) for job in jobs]
        out, error = [], None
        for fut in pending:
            try:
                out.append(fut.result())
            except Exception as exc:  # re-raised below, after the others
                error = error or exc
                out.append(None)
        if error is not None:
            raise error
        return out

    def cluster_means(self, resource_type, names, period, granularity,
                      metrics, end=None):
        """Host counters' mean rates over the period, as InfluxDB's.

        For ``disk`` and ``net`` of compute nodes, one instant query per
        metric computes what the InfluxDB datasource's ``cluster_means``
        does: per device, (last sample of the period - last sample of the
        period before) / period, a reset giving none, summed per host
        (:meth:`.query.QueryBuilder.counter_mean`). It equals the mean of
        the windows' rates to within one scrape interval over the period
        (about 1-2 % at 10 s / 600 s); computing it the same way on both
        backends keeps an audit's decisions the same on the same data.
        Other metrics or resource types: the windows' mean (base class).
        """
        if resource_type != metric_windows.COMPUTE_NODE or \
                any(m not in ('disk', 'net') for m in metrics):
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
            q = query.QueryBuilder(self.host_label, only, granularity,
                                   self.scrape_interval, self.schema)
            at = e - query.EPSILON
            jobs = [self._instant_job(q.host_mean(m, period), at, m)
                    for m in metrics]
            per_metric = dict(zip(metrics, self._run(jobs, True)))
            empty = [m for m in metrics if not per_metric[m]]
            if empty:
                self._explain_missing(resource_type, empty, q, 2 * period,
                                      e)
            return {m: np.array([per_metric[m].get(n, np.nan)
                                 for n in names], dtype=float)
                    for m in metrics}

        return self.cached(key, read_means)

    def _instant_job(self, promql, at, metric):
        def run():
            data = self.client.query(promql, at=at)
            try:
                return decode.vector(data, self.host_label)
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise metric_windows.MetricsUnavailable(
                    f'Prometheus at {self.url}: unexpected answer for '
                    f'{metric}: {exc!r}') from exc
        return run

    def fetch(self, resource_type, metrics, names, start, end, granularity,
              bulk=False):
        label = self.label_of(resource_type)
        g = int(granularity)
        if g <= 0:
            raise ValueError(f'granularity must be positive, got {g}')
        names = None if names is None else tuple(names)
        if names is not None and not names:
            return {m: {} for m in metrics}
        start = float(start)
        n_steps = max(int(math.ceil((float(end) - start) / g)), 0)
        q = query.QueryBuilder(label, names, g, self.scrape_interval,
                               self.schema)
        if self.instant_only:
            # every piece's first evaluation is start + g * (k0 + 1) - EPS:
            # one offset aligns them all to the step
            q.set_offset(query.subquery_offset_ms(start + g - query.EPSILON,
                                                  g))
        promql = {}
        for metric in metrics:
            text = q.of(resource_type, metric)
            if text is None:
                raise ValueError(f'unknown {resource_type} metric '
                                 f'{metric!r}')
            promql[metric] = text
        if n_steps == 0:
            return {m: {} for m in metrics}
        # Evaluation times: each window's end minus EPSILON, in pieces of
        # at most MAX_STEPS steps.
        pieces = [(start + g * k0, min(MAX_STEPS, n_steps - k0))
                  for k0 in range(0, n_steps, MAX_STEPS)]
        jobs, keys = [], []
        for metric in metrics:
            for p_start, p_steps in pieces:
                first = p_start + g - query.EPSILON
                last = first + g * (p_steps - 1)
                keys.append((metric, first))
                jobs.append(self._job(promql[metric], first, last, g, label,
                                      metric, q, p_steps))
        results = self._run(jobs, bulk)
        out = {m: {} for m in metrics}
        for (metric, _first), per_name in zip(keys, results):
            for name, (t, v) in per_name.items():
                got = out[metric].get(name)
                out[metric][name] = (t, v) if got is None else (
                    np.concatenate([got[0], t]), np.concatenate([got[1], v]))
        empty = [m for m in metrics if not out[m]]
        if bulk and empty:
            self._explain_missing(resource_type, empty, q,
                                  float(end) - start + q.rate_range,
                                  float(end))
        return out

    def _job(self, promql, first, last, g, label, metric, q, n_steps):
        def run():
            shift = 0.0
            if self.instant_only:
                sub, at, shift = q.subquery(promql, first, n_steps)
                data = self.client.query(sub, at=at)
            else:
                data = self.client.query_range(promql, first, last, g)
            try:
                out = decode.matrix(data, label, first + shift, g)
                return {n: (t - shift, v) for n, (t, v) in out.items()}
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise metric_windows.MetricsUnavailable(
                    f'Prometheus at {self.url}: unexpected answer for '
                    f'{metric}: {exc!r}') from exc
        return run

    def _explain_missing(self, resource_type, metrics, q, range_s, at):
        """Raise MetricsUnavailable if ``metrics`` lack Prometheus series.

        One instant query: which of the Prometheus metrics they need have
        a series with the label in the read's range. When every metric has
        one alternative fully present, the names asked for simply have no
        samples: their windows are NaN, nothing is raised.
        """
        needs = query.SCHEMA_NEEDS[self.schema][resource_type]
        wanted = sorted({n for m in metrics for alt in needs[m] for n in alt})
        data = self.client.query(q.presence(wanted, math.ceil(range_s)),
                                 at=at)
        try:
            present = decode.vector_names(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise metric_windows.MetricsUnavailable(
                f'Prometheus at {self.url}: unexpected answer checking '
                f'{resource_type} metrics: {exc!r}') from exc
        problems = []
        for metric in metrics:
            if any(all(n in present for n in alt) for alt in needs[metric]):
                continue
            missing = ' or '.join(
                ', '.join(n for n in alt if n not in present)
                for alt in needs[metric])
            problems.append(f'{resource_type} metric {metric!r} needs '
                            f'{missing}')
        if problems:
            raise metric_windows.MetricsUnavailable(
                f'Prometheus at {self.url} has no series with a '
                f'{q.label!r} label in the {int(range_s)} s before '
                f'{int(at)}: {"; ".join(problems)}. Is '
                f'{EXPORTERS[self.schema][resource_type]} scraped, and '
                f'does its scrape '
                f'configuration set the {q.label!r} label?')
