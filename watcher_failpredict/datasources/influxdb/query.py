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

"""The InfluxQL of the InfluxDB datasource.

:class:`QueryBuilder` writes the statements of one read (a time range, a
window width, an optional host filter) in either read mode (raw points
windowed locally, or windows reduced by the server; see
:mod:`.datasource`) and decodes each statement's answer accordingly.
Only constants of the collectd schema, integers and bind-parameter
placeholders end up in the text: tag values (host names, instance UUIDs)
travel as bind parameters (:attr:`QueryBuilder.bind_params`).

:func:`balanced_groups` spreads a read's statements over a few concurrent
requests of similar cost.
"""

import math
import re

import numpy as np

from watcher_failpredict.datasources import collectd_schema as cs
from watcher_failpredict.datasources.influxdb import decode


def regex_of(words):
    """An InfluxQL regex literal matching exactly ``words`` (constants)."""
    return '/^(' + '|'.join(re.escape(w) for w in words) + ')$/'


#: Host metrics that are collectd counters summed over devices, as
#: ``(measurements, type, extra tags, instance to exclude)``.
HOST_COUNTERS = {
    'disk': ((cs.DISK_READ, cs.DISK_WRITE), cs.TYPE_DISK_OCTETS,
             (cs.TAG_INSTANCE,), None),
    'net': ((cs.IF_RX, cs.IF_TX), cs.TYPE_IF_OCTETS, (cs.TAG_INSTANCE,),
            cs.LOOPBACK),
}


class QueryBuilder:
    """Builds InfluxQL for one time range / host filter, and decodes answers.

    Only constants of the collectd schema, ints and bind-parameter
    placeholders end up in the text; host names travel in
    :attr:`bind_params`. With ``raw`` the statements select raw points
    (grouped by tags only) and :meth:`decode` windows them; otherwise the
    server windows them. ``param_prefix`` names the bind parameters
    (``$h0``, ``$h1``, ... by default): builders whose statements share a
    request need different ones.
    """

    def __init__(self, start, end, granularity, names, raw=False,
                 interval=10.0, param_prefix='h'):
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
                self.bind_params[f'{param_prefix}{i}'] = str(name)
                terms.append(f'"{cs.TAG_HOST}" = ${param_prefix}{i}')
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
        if self.raw:
            return combine
        return decode.patched(self.last_bucket, combine)

    def decode(self, raw, is_counter):
        """One statement's answer as ``[(name, tags, times, values)]``.

        One value per window and series: the server's (server mode), or the
        mean of the raw samples (or, for counters, of the rates between
        consecutive samples) in each window (raw mode). Times are window
        starts; windows without a value are left out, as ``fill(none)``
        does.
        """
        keys, sid, t, v = decode.flatten(raw)
        if self.raw:
            if is_counter:
                sid, t, v = decode.rates(sid, t, v)
            sid, t, v = decode.window_means(sid, t, v, self.start, self.g,
                                            self.n_windows)
        else:
            ok = ~np.isnan(v)
            sid, t, v = sid[ok], t[ok], v[ok]
        return decode.split(keys, sid, t, v)


def balanced_groups(weights, k):
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
