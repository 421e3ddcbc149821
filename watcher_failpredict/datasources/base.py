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

"""What every watcher-failpredict datasource shares.

A datasource here answers two kinds of questions:

* Watcher's own, per resource (``statistic_aggregation``,
  ``statistic_series`` and the ``get_host_*`` / ``get_instance_*``
  helpers of :class:`DataSourceBase`), so that Watcher's built-in strategies
  such as ``workload_balance`` run on it unchanged;
* ours, in bulk: :meth:`WindowsDataSource.cluster_windows` returns the
  recent per-metric windows of many resources at once, fetched with a small
  constant number of backend requests whatever the number of resources.

Both are served from one backend method, :meth:`WindowsDataSource.fetch`,
that a concrete datasource (InfluxDB, in-memory) implements.
"""

import abc
import collections
import contextlib
import datetime
import time
import warnings

import numpy as np
from oslo_log import log
from watcher.common import exception as watcher_exc
from watcher.decision_engine.datasources import base as watcher_ds_base
from watcher.decision_engine.datasources import cache as watcher_ds_cache

from watcher_failpredict.datasources import deadline as deadline_mod
from watcher_failpredict.datasources import windows as metric_windows

LOG = log.getLogger(__name__)

#: How the deadline :meth:`WindowsDataSource.start_read_deadline` starts is
#: named in messages.
AUDIT_DEADLINE = ("the audit's metrics read deadline ([failpredict] "
                  "metrics_read_deadline)")
#: How the deadline of a read outside an audit's is named.
READ_DEADLINE = ('the metrics read deadline ([failpredict] '
                 'metrics_read_deadline)')

#: Above this many names a bulk read fetches every resource and filters
#: locally: a filter of thousands of bind parameters costs the server more
#: than it saves.
NAME_FILTER_LIMIT = 500


class WindowsDataSource(watcher_ds_base.DataSourceBase, metaclass=abc.ABCMeta):
    """A Watcher datasource backed by a bulk windows reader.

    Subclasses implement :meth:`fetch` and :meth:`check_availability`.
    """

    # Watcher meter name -> (resource type, our metric name)
    METRIC_MAP = dict(
        watcher_ds_base.DataSourceBase.METRIC_MAP,
        host_cpu_usage=(metric_windows.COMPUTE_NODE, 'cpu'),
        host_ram_usage=(metric_windows.COMPUTE_NODE, 'memory_kib'),
        instance_cpu_usage=(metric_windows.INSTANCE, 'cpu'),
        instance_ram_usage=(metric_windows.INSTANCE, 'memory'),
    )

    def __init__(self):
        super().__init__()
        self._windows_cache = {}
        #: ``callable() -> Unix seconds`` that Watcher's per-resource
        #: helpers (statistic_aggregation, get_*_usage) take as "now";
        #: a simulator replaying another time sets its own clock here.
        self.clock = time.time
        #: Wall-clock seconds one read may take when no deadline was
        #: started (:meth:`start_read_deadline`); None: no such bound here
        #: (a backend may have its own). The InfluxDB datasource sets it
        #: from ``[failpredict] metrics_read_deadline``.
        self.read_deadline = None
        #: How messages name that per-read deadline.
        self.read_deadline_what = READ_DEADLINE
        self._deadline = None

    # -- deadlines ----------------------------------------------------------

    def start_read_deadline(self, seconds=None, what=AUDIT_DEADLINE):
        """Start one deadline that every read shares until
        :meth:`end_read_deadline`: the strategy starts it when an audit
        starts reading, so that all of the audit's reads together end
        within ``seconds`` (default :attr:`read_deadline`) and a read
        still running when it passes fails the audit.

        :returns: the :class:`~.deadline.Deadline`, or None (no seconds)
        """
        seconds = self.read_deadline if seconds is None else seconds
        self._deadline = (None if seconds is None
                          else deadline_mod.Deadline(seconds, what))
        return self._deadline

    def end_read_deadline(self):
        """Forget the deadline :meth:`start_read_deadline` started."""
        self._deadline = None

    @contextlib.contextmanager
    def reads_within(self, deadline):
        """Within the block, reads end by ``deadline`` (a
        :class:`~.deadline.Deadline`, or None) and by
        :meth:`current_deadline` at the block's start.
        """
        saved = self._deadline
        self._deadline = deadline_mod.Deadline.earliest(
            deadline, self.current_deadline())
        try:
            yield
        finally:
            self._deadline = saved

    def current_deadline(self):
        """The deadline a read starting now must end by: the started one,
        else a fresh one of :attr:`read_deadline` seconds, else None.
        """
        if self._deadline is not None:
            return self._deadline
        if self.read_deadline is not None:
            return deadline_mod.Deadline(self.read_deadline,
                                         self.read_deadline_what)
        return None

    def cached(self, key, read):
        """The answer cached under ``key``, else ``read()``'s, then cached.

        Bulk answers are kept until :meth:`reset_caches` (an audit asks for
        the same windows from several places); ``key`` must name everything
        the answer depends on.
        """
        answer = self._windows_cache.get(key)
        if answer is None:
            answer = self._windows_cache[key] = read()
        return answer

    def reset_caches(self):
        """Forget every answer cached so far, as a new audit finds them.

        Both caches: this class's windows and means, and Watcher's
        per-resource metric cache. A simulator or a benchmark that runs
        several audits on one datasource calls it before each.
        """
        self._windows_cache.clear()
        self.metric_cache = watcher_ds_cache.MetricDataCache()

    # -- the public bulk entry points ---------------------------------------

    def cluster_windows(self, resource_type, names, period, granularity,
                        metrics=None, end=None):
        """Recent windows of ``metrics`` for every resource in ``names``.

        :param resource_type: COMPUTE_NODE or INSTANCE (of
            :mod:`~watcher_failpredict.datasources.windows`)
        :param names: collectd host names (for instances: instance UUIDs)
        :param period: seconds of history, ending at ``end`` (default: now)
        :param granularity: seconds per window step
        :param metrics: metric names (default: all of the resource type's)
        :raises MetricsUnavailable: the backend could not be read
        """
        read = self._windows_read(resource_type, names, period, granularity,
                                  metrics, end)
        return self.cached(read.key, lambda: read.aligned(self.fetch(
            *read.fetch_args, bulk=True)))

    def cluster_windows_together(self, reads):
        """:meth:`cluster_windows` of each of ``reads``, read together.

        For a consumer that needs several small reads at once (planned
        mode: a few hosts' load and their instances' CPU over the same
        history): a backend may answer them in one request
        (:meth:`fetch_together`), so that they cost one request instead of
        one each.

        :param reads: ``(resource_type, names, period, granularity,
            metrics, end)`` tuples, the arguments of :meth:`cluster_windows`
        :returns: their windows, in order
        :raises MetricsUnavailable: the backend could not be read
        """
        reads = [self._windows_read(*r) for r in reads]
        todo = [r for r in reads if r.key not in self._windows_cache]
        if todo:
            raws = self.fetch_together([r.fetch_args for r in todo])
            for r, raw in zip(todo, raws):
                self._windows_cache[r.key] = r.aligned(raw)
        return [self._windows_cache[r.key] for r in reads]

    def _windows_read(self, resource_type, names, period, granularity,
                      metrics=None, end=None):
        """One :meth:`cluster_windows` read, its arguments checked."""
        known = metric_windows.METRICS_BY_TYPE[resource_type]
        metrics = tuple(metrics or known)
        unknown = [m for m in metrics if m not in known]
        if unknown:
            raise ValueError(f'unknown {resource_type} metric(s) {unknown}; '
                             f'known: {sorted(known)}')
        period, granularity = int(period), int(granularity)
        if period <= 0 or granularity <= 0:
            raise ValueError('period and granularity must be positive, got '
                             f'{period} and {granularity}')
        now = self.clock() if end is None else float(end)
        end_t = (now // granularity + 1) * granularity
        return _WindowsRead(resource_type, tuple(names), metrics,
                            end_t - period - granularity, end_t, granularity)

    def cluster_means(self, resource_type, names, period, granularity,
                      metrics, end=None):
        """Mean of each metric over the last ``period`` seconds, per name.

        For metrics a consumer needs only as their mean over the period
        (the risk model uses disk and network I/O only so): a backend may
        compute them more cheaply than their windows. This default takes
        the mean of the last ``period // granularity`` steps of
        :meth:`cluster_windows`.

        :returns: ``{metric: array of len(names)}``, NaN where a name has no
            sample
        :raises MetricsUnavailable: the backend could not be read
        """
        steps = max(int(period) // int(granularity), 1)
        win = self.cluster_windows(resource_type, names, period, granularity,
                                   metrics=metrics, end=end)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', RuntimeWarning)
            return {m: np.nanmean(win.data[m][:, -steps:], axis=1)
                    for m in metrics}

    @abc.abstractmethod
    def fetch(self, resource_type, metrics, names, start, end, granularity,
              bulk=False):
        """Read raw samples from the backend.

        :param names: a tuple of names to restrict to, or None for all
        :param bulk: True for :meth:`cluster_windows`' cluster-wide reads,
            which a backend may spread over a fixed number of concurrent
            requests; False for Watcher's per-resource helpers
        :returns: ``{metric: {name: (times, values)}}``, times in Unix
            seconds; values already in the units of HOST_METRICS /
            INSTANCE_METRICS (``memory_kib``: host memory used in KiB)
        :raises MetricsUnavailable: on any backend failure
        """

    def fetch_together(self, fetches):
        """:meth:`fetch` of each of ``fetches`` (its positional arguments),
        in order. This default reads them one after the other; a backend
        that can answer several in one request does so.
        """
        return [self.fetch(*f, bulk=True) for f in fetches]

    def read_history(self, names, start, end, granularity, chunk,
                     progress=None, filter_names=True, chunk_deadline=None,
                     deadline=None,
                     chunk_what='the per-chunk read deadline'):
        """Every host metric of ``names`` over [start, end), chunk by chunk.

        For training on a long history: one :meth:`fetch` per chunk of
        about ``chunk`` seconds (:func:`~.windows.chunk_bounds`) keeps each
        answer small, and the chunks are put on one grid by the same
        :func:`~.windows.align` as the strategy's reads.

        :param progress: ``progress(done, total)``, called with 0 before the
            first chunk and after each chunk read
        :param filter_names: False reads every host and keeps ``names``
            (cheaper than a filter listing every host)
        :param chunk_deadline: wall-clock seconds each chunk's read may
            take (None: :meth:`current_deadline`'s)
        :param deadline: a :class:`~.deadline.Deadline` (or seconds from
            now) the whole read must end by
        :param chunk_what: how messages name ``chunk_deadline``
        :returns: :class:`~.windows.ClusterWindows` of ``names``
        :raises MetricsUnavailable: the backend could not be read
        :raises DeadlineExceeded: a deadline passed; the message names the
            chunk and the deadline
        """
        metrics = tuple(metric_windows.HOST_METRICS)
        bounds = metric_windows.chunk_bounds(start, end, granularity, chunk)
        if deadline is not None and \
                not isinstance(deadline, deadline_mod.Deadline):
            deadline = deadline_mod.Deadline(
                deadline, 'the overall history read deadline')
        if progress is not None:
            progress(0, len(bounds))
        parts = {m: {} for m in metrics}
        for done, (lo, hi) in enumerate(bounds, 1):
            per_chunk = None if chunk_deadline is None else \
                deadline_mod.Deadline(chunk_deadline, chunk_what)
            try:
                with self.reads_within(deadline_mod.Deadline.earliest(
                        per_chunk, deadline)):
                    part = self.fetch(
                        metric_windows.COMPUTE_NODE, metrics,
                        tuple(names) if filter_names else None, lo, hi,
                        granularity)
            except deadline_mod.DeadlineExceeded as exc:
                raise type(exc)(
                    f'history chunk {done} of {len(bounds)} '
                    f'[{_iso(lo)} .. {_iso(hi)}): {exc}') from exc
            for metric, per_name in part.items():
                for name, (t, v) in per_name.items():
                    parts[metric].setdefault(name, []).append((t, v))
            if progress is not None:
                progress(done, len(bounds))
        joined = {
            m: {n: (np.concatenate([p[0] for p in pieces]),
                    np.concatenate([p[1] for p in pieces]))
                for n, pieces in per_name.items()}
            for m, per_name in parts.items()}
        return metric_windows.align(joined, tuple(names), metrics, start,
                                    end, granularity)

    # -- Watcher's per-resource interface -----------------------------------

    def list_metrics(self):
        return {k for k, v in self.METRIC_MAP.items() if v is not None}

    def query_retry_reset(self, exception_instance):
        pass

    def _resource_name(self, resource, resource_type):
        if resource_type == metric_windows.INSTANCE:
            return resource.uuid
        return self.collectd_host(resource.hostname)

    def collectd_host(self, hostname):
        """The collectd Hostname Watcher's node ``hostname`` reports as."""
        return hostname

    def _series(self, resource, resource_type, meter_name, start, end,
                granularity):
        rtype, metric = self._get_meter(meter_name)
        if rtype != resource_type:
            raise watcher_exc.MetricNotAvailable(metric=meter_name)
        name = self._resource_name(resource, resource_type)
        raw = self.fetch(resource_type, (metric,), (name,), start, end,
                         granularity)
        return metric_windows.align(raw, (name,), (metric,), start, end,
                                    granularity).data[metric][0]

    def _statistic_aggregation(self, resource=None, resource_type=None,
                               meter_name=None, period=300, aggregate='mean',
                               granularity=300):
        granularity = int(granularity or 300)
        end = (self.clock() // granularity + 1) * granularity
        values = self._series(resource, resource_type, meter_name,
                              end - int(period), end, granularity)
        values = values[~np.isnan(values)]
        if values.size == 0:
            return None
        if aggregate == 'count':
            return float(values.size)
        func = {'mean': np.mean, 'min': np.min, 'max': np.max}.get(aggregate)
        if func is None:
            raise ValueError(f'unsupported aggregate {aggregate!r}; use one '
                             f'of {self.AGGREGATES}')
        return float(func(values))

    def statistic_series(self, resource=None, resource_type=None,
                         meter_name=None, start_time=None, end_time=None,
                         granularity=300):
        granularity = int(granularity or 300)
        start = _epoch(start_time)
        end = _epoch(end_time) if end_time else self.clock()
        values = self._series(resource, resource_type, meter_name, start, end,
                              granularity)
        times = start + granularity * np.arange(values.size)
        return {
            datetime.datetime.fromtimestamp(
                t, datetime.timezone.utc).isoformat(): float(v)
            for t, v in zip(times, values) if not np.isnan(v)
        }

    def get_host_cpu_usage(self, resource, period=300, aggregate='mean',
                           granularity=None):
        return self.statistic_aggregation(
            resource, metric_windows.COMPUTE_NODE, 'host_cpu_usage', period,
            aggregate, granularity)

    def get_host_ram_usage(self, resource, period=300, aggregate='mean',
                           granularity=None):
        return self.statistic_aggregation(
            resource, metric_windows.COMPUTE_NODE, 'host_ram_usage', period,
            aggregate, granularity)

    def get_instance_cpu_usage(self, resource, period=300, aggregate='mean',
                               granularity=None):
        return self.statistic_aggregation(
            resource, metric_windows.INSTANCE, 'instance_cpu_usage', period,
            aggregate, granularity)

    def get_instance_ram_usage(self, resource, period=300, aggregate='mean',
                               granularity=None):
        return self.statistic_aggregation(
            resource, metric_windows.INSTANCE, 'instance_ram_usage', period,
            aggregate, granularity)

    def _not_collected(self, meter_name):
        raise watcher_exc.MetricNotAvailable(metric=meter_name)

    def get_host_outlet_temp(self, resource, period, aggregate,
                             granularity=None):
        self._not_collected('host_outlet_temp')

    def get_host_inlet_temp(self, resource, period, aggregate,
                            granularity=None):
        self._not_collected('host_inlet_temp')

    def get_host_airflow(self, resource, period, aggregate, granularity=None):
        self._not_collected('host_airflow')

    def get_host_power(self, resource, period, aggregate, granularity=None):
        self._not_collected('host_power')

    def get_instance_ram_allocated(self, resource, period, aggregate,
                                   granularity=None):
        self._not_collected('instance_ram_allocated')

    def get_instance_l3_cache_usage(self, resource, period, aggregate,
                                    granularity=None):
        self._not_collected('instance_l3_cache_usage')

    def get_instance_root_disk_size(self, resource, period, aggregate,
                                    granularity=None):
        self._not_collected('instance_root_disk_size')


class _WindowsRead(collections.namedtuple(
        '_WindowsRead', 'resource_type names metrics start end granularity')):
    """One cluster-wide windows read: what it fetches, how its answer is
    cached and aligned.
    """

    @property
    def key(self):
        """What the answer depends on (the cache's key)."""
        return (self.resource_type, self.names, self.metrics,
                self.end - self.start - self.granularity, self.granularity,
                self.end)

    @property
    def fetch_args(self):
        """:meth:`WindowsDataSource.fetch`'s positional arguments: up to
        NAME_FILTER_LIMIT names, the backend filters on them (an audit
        needs the instances of a few failing hosts, not the whole cloud's);
        more, it reads everything once and the windows keep ours. Either
        way it is one backend read, whatever the number of names.
        """
        only = (self.names if len(self.names) <= NAME_FILTER_LIMIT
                else None)
        return (self.resource_type, self.metrics, only, self.start,
                self.end, self.granularity)

    def aligned(self, raw):
        """The fetched samples ``raw`` as this read's windows."""
        return metric_windows.align(raw, self.names, self.metrics,
                                    self.start, self.end, self.granularity)


def _epoch(value):
    if value is None:
        raise ValueError('start_time is required')
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.timestamp()
    return float(value)


def _iso(ts):
    return datetime.datetime.fromtimestamp(
        ts, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
