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

"""Decoding InfluxDB answers into per-name series (pure numpy functions).

One statement's raw result (``{'series': [{'name', 'tags', 'values'}]}``,
as :meth:`~.client.InfluxDBClient.query` returns it) goes through

* :func:`flatten`: every row of every series in flat arrays;
* for raw-mode reads (see :mod:`.datasource`), :func:`rates` (counters:
  per-second rates between consecutive samples) and :func:`window_means`
  (one mean per series and window);
* :func:`split`: back to ``[(name, tags, times, values)]`` per series;

and a metric's decoded statements are then combined into
``{collectd host: (times, values)}`` by :func:`by_host`,
:func:`sum_by_host`, :func:`jiffies_used_pct`, :func:`memory_pct_absolute`,
:func:`virt_memory_mib` (with :func:`map_values` for unit changes and
:func:`patched` for the exact newest bucket of server-mode counters).
:func:`gc_paused` keeps Python's cyclic collector out of the way while
large answers are decoded.
"""

import contextlib
import gc
import itertools

import numpy as np

from watcher_failpredict.datasources import collectd_schema as cs
from watcher_failpredict.datasources import windows as metric_windows

MIB = 2.0 ** 20


def flatten(raw):
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


def rates(sid, t, v):
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


def window_means(sid, t, v, start, g, n_windows):
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


def split(keys, sid, t, v):
    """``[(name, tags, t, v)]`` of the series with at least one row."""
    bounds = np.searchsorted(sid, np.arange(len(keys) + 1))
    out = []
    for i, (name, tags) in enumerate(keys):
        a, b = bounds[i], bounds[i + 1]
        if b > a:
            out.append((name, tags, t[a:b], v[a:b]))
    return out


# -- combining decoded series --------------------------------------------

def _series(decoded):
    """Yield (tags dict, times array, values array) of one statement."""
    for _name, tags, t, v in decoded:
        yield tags, t, v


def _series_key(name, tags):
    return name, tuple(sorted(tags.items()))


def patched(last, combine):
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


def by_host(raw):
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


def sum_by_host(raw):
    """Rates of several devices/measurements summed per host."""
    return {host: _sum_aligned([(t, v) for _tags, t, v in parts])
            for host, parts in _group_by_host(raw).items()}


def map_values(per_name, func):
    return {n: (t, func(v)) for n, (t, v) in per_name.items()}


def keep_from(t, v, start):
    keep = t >= start
    return t[keep], v[keep]


def used_from_idle(idle_pct):
    """100 - idle. Rounding slack (collectd's percentages can sum to
    100 + 1e-14) is clipped; an idle reading outside 0-100 is not: clipped
    to 0 % CPU it would make a host reporting garbage look idle, the best
    destination (windows.implausible_reasons judges it instead).
    """
    used = 100.0 - np.asarray(idle_pct, dtype=float)
    tol = metric_windows.RANGE_TOLERANCE
    slack = ((used < 0) & (used >= -tol)) | \
        ((used > 100) & (used <= 100 + tol))
    return np.where(slack, np.clip(used, 0.0, 100.0), used)


def jiffies_used_pct(raw):
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


def memory_pct_absolute(decoded):
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


def virt_memory_mib(raw):
    """Guest memory in use (MiB): available - unused, else rss."""
    out = {}
    for host, parts in _group_by_host(raw).items():
        by_ti = _by_type_instance(parts)
        avail = by_ti.get(cs.VIRT_MEMORY_AVAILABLE)
        unused = by_ti.get(cs.VIRT_MEMORY_UNUSED)
        if avail is not None and unused is not None:
            common, ia, iu = np.intersect1d(avail[0], unused[0],
                                            return_indices=True)
            out[host] = (common, (avail[1][ia] - unused[1][iu]) / MIB)
        elif cs.VIRT_MEMORY_RSS in by_ti:
            t, v = by_ti[cs.VIRT_MEMORY_RSS]
            out[host] = (t, v / MIB)
    return out


@contextlib.contextmanager
def gc_paused():
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
