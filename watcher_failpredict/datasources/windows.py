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

"""The backend-neutral core of the metrics layer.

What every reader of metrics shares, whatever the backend (InfluxDB, the
in-memory store, a trace file) and whether or not Watcher is loaded:

* the metric catalogue: the resource types (:data:`COMPUTE_NODE`,
  :data:`INSTANCE`) and the metrics of each, in the units every datasource
  returns them in;
* :class:`ClusterWindows`, aligned recent windows of several metrics for
  several resources, the type the prediction code works on, and
  :func:`align`, which puts raw samples on its time grid;
* :exc:`MetricsUnavailable`, the one error a backend raises when it cannot
  be read.

It needs numpy only: no Watcher, no oslo, no backend (a test checks), so
that reading a trace or a CSV does not load a cloud controller.
:mod:`watcher_failpredict.datasources.base` builds the Watcher datasource
on top of it.
"""

import dataclasses

import numpy as np

COMPUTE_NODE = 'compute_node'
INSTANCE = 'instance'

#: Host-level metrics, in the units every datasource must return them in.
HOST_METRICS = {
    'cpu': 'CPU in use, percent of the host (0-100)',
    'memory': 'memory in use, percent of the host (0-100)',
    'load': 'load average over 1 minute (collectd load_shortterm)',
    'disk': 'disk I/O, bytes per second read + written, all disks',
    'net': 'network I/O, bytes per second received + sent, all '
           'interfaces but loopback',
}

#: Instance-level metrics (keyed by instance UUID).
INSTANCE_METRICS = {
    'cpu': 'CPU in use, percent of the instance\'s vCPUs (0-100)',
    'memory': 'memory in use by the guest, MiB',
}

METRICS_BY_TYPE = {COMPUTE_NODE: HOST_METRICS, INSTANCE: INSTANCE_METRICS}

#: The physical range of each metric in the catalogue's units: a reading
#: outside it is garbage (a broken agent, a wrapped counter, a unit
#: mistake), never a load. NaN is a lost sample, not garbage. Instance CPU
#: is judged once it is in percent of the instance's vCPUs.
PHYSICAL_RANGES = {
    COMPUTE_NODE: {'cpu': (0.0, 100.0), 'memory': (0.0, 100.0),
                   'load': (0.0, np.inf), 'disk': (0.0, np.inf),
                   'net': (0.0, np.inf)},
    INSTANCE: {'cpu': (0.0, 100.0), 'memory': (0.0, np.inf)},
}
#: Slack around a range: collectd's CPU states add up to 100 + 1e-14, and
#: a 10 s mean of counter rates may dip a hair below 0 around a reset.
RANGE_TOLERANCE = 0.5


class MetricsUnavailable(Exception):
    """The metrics backend could not be read; no decision may use zeros."""


@dataclasses.dataclass(frozen=True)
class ClusterWindows:
    """Aligned recent windows of several metrics for several resources.

    ``data[metric]`` has shape ``(len(names), len(times))``; a missing sample
    is NaN. ``times`` are the window starts, Unix seconds, ``step`` apart.
    ``last_seen[i]`` is the time of resource i's latest raw sample of any
    metric (NaN when it has none at all).
    """

    names: tuple
    times: np.ndarray
    step: int
    data: dict
    last_seen: np.ndarray
    _positions: dict = dataclasses.field(init=False, repr=False,
                                         compare=False)

    def __post_init__(self):
        # names are looked up per host and per move: O(1), not tuple.index
        object.__setattr__(self, '_positions',
                           {n: i for i, n in enumerate(self.names)})

    def index(self, name):
        try:
            return self._positions[name]
        except KeyError:
            raise ValueError(f'{name!r} is not in these windows') from None

    def series(self, metric, name):
        return self.data[metric][self.index(name)]

    def subset(self, names):
        idx = [self.index(n) for n in names]
        return dataclasses.replace(
            self, names=tuple(names),
            data={m: v[idx] for m, v in self.data.items()},
            last_seen=self.last_seen[idx])


def implausible_reasons(windows, resource_type):
    """``{name: reason}`` for each resource of ``windows`` holding a
    reading outside its metric's physical range (PHYSICAL_RANGES, infinite
    values included); the reason names the metric, the first such value
    and the range. Metrics without a range, and NaN, are not judged.
    """
    reasons = {}
    for metric, (lo, hi) in PHYSICAL_RANGES[resource_type].items():
        arr = windows.data.get(metric)
        if arr is None or not arr.size:
            continue
        with np.errstate(invalid='ignore'):
            bad = np.isinf(arr) | (arr < lo - RANGE_TOLERANCE) | \
                (arr > hi + RANGE_TOLERANCE)
        for row in np.flatnonzero(bad.any(axis=1)):
            name = windows.names[row]
            if name in reasons:
                continue
            value = arr[row][bad[row]][0]
            reasons[name] = (f'implausible {metric} reading {value:g} '
                             f'(physical range {lo:g} to {hi:g})')
    return reasons


def align(raw, names, metrics, start, end, step):
    """Put ``raw[metric][name] = (times, values)`` on a common time grid.

    Samples are averaged into ``step``-second buckets starting at ``start``
    (inclusive) up to ``end`` (exclusive). Backends may already return one
    value per bucket; averaging is then the identity. Vectorised over all
    names of a metric (one ``bincount``): a per-name loop of numpy calls
    cost about 0.3 s for 1,000 hosts x 5 metrics.
    """
    n_steps = max(int((end - start) // step), 0)
    times = start + step * np.arange(n_steps, dtype=float)
    data = {}
    last_seen = np.full(len(names), np.nan)
    for metric in metrics:
        rows, t, v = _concat(raw.get(metric, {}), names)
        _update_last_seen(last_seen, rows, t, v)
        b = np.floor((t - start) / step)
        ok = ~np.isnan(v) & (b >= 0) & (b < n_steps)
        key = rows[ok] * n_steps + b[ok].astype(np.int64)
        size = len(names) * n_steps
        sums = np.bincount(key, weights=v[ok], minlength=size)
        counts = np.bincount(key, minlength=size)
        with np.errstate(invalid='ignore', divide='ignore'):
            arr = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        data[metric] = arr.reshape(len(names), n_steps)
    return ClusterWindows(names=tuple(names), times=times, step=int(step),
                          data=data, last_seen=last_seen)


def _concat(per_name, names):
    """Every sample of ``names`` found in ``per_name``, in flat arrays.

    :returns: ``(rows, t, v)``: row index into ``names`` of each sample (a
        name listed twice gets its samples on both rows), its time, value.
    """
    rows, ts, vs = [], [], []
    for i, name in enumerate(names):
        got = per_name.get(name)
        if got is None:
            continue
        t = np.asarray(got[0], dtype=float).ravel()
        v = np.asarray(got[1], dtype=float).ravel()
        if t.shape != v.shape:
            raise ValueError(f'{name!r}: {t.size} times but {v.size} values')
        rows.append(np.full(t.size, i, dtype=np.int64))
        ts.append(t)
        vs.append(v)
    if not rows:
        empty = np.array([], dtype=float)
        return np.array([], dtype=np.int64), empty, empty
    return np.concatenate(rows), np.concatenate(ts), np.concatenate(vs)


def _update_last_seen(last_seen, rows, t, v):
    """``last_seen[row]`` = max(itself, latest time with a non-NaN value)."""
    ok = ~np.isnan(v)
    if not ok.any():
        return
    latest = np.full(last_seen.size, -np.inf)
    np.maximum.at(latest, rows[ok], t[ok])
    seen = latest > -np.inf
    last_seen[seen] = np.fmax(last_seen[seen], latest[seen])


def chunk_bounds(start, end, granularity, chunk):
    """``[(lo, hi), ...]`` covering [start, end) in pieces of about ``chunk``.

    Each piece is a whole number of ``granularity`` steps (at least one),
    so that the pieces' windows meet without overlap; the last one ends at
    ``end``. Used to read a long history one moderate answer at a time.
    """
    granularity = int(granularity)
    step = max(int(chunk) // granularity, 1) * granularity
    return [(lo, min(lo + step, int(end)))
            for lo in range(int(start), int(end), step)]
