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

"""Label contamination: the samples a past migration touched.

Once the plugin acts, a relieved host's would-be failure is never
observed: its history shows a rise, then a drop. Trained on such samples a
model learns that rising hosts recover by themselves, so the pipeline
(:func:`pipeline.risk_samples`) leaves them out of training and of the
held-out scores. The intervals come from a file (:func:`load_intervals`)
or from Watcher's actions (:func:`intervals_from_actions`).
"""

import csv
import datetime
import json

import numpy as np


def _parse_time(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        pass
    if isinstance(value, datetime.datetime):
        dt = value
    else:
        try:
            dt = datetime.datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f'{value!r} is neither Unix seconds nor an ISO '
                             '8601 time') from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp()


def check_intervals(intervals):
    """``[(host, start, end)]`` with numeric times; ValueError names the bad
    entry.
    """
    out = []
    for i, item in enumerate(intervals or ()):
        try:
            host, start, end = item
        except (TypeError, ValueError):
            raise ValueError(f'migration interval {i}: expected (host, '
                             f'start, end), got {item!r}') from None
        start, end = _parse_time(start), _parse_time(end)
        if end < start:
            raise ValueError(f'migration interval {i} ({host}): end '
                             f'{end:g} before start {start:g}')
        out.append((str(host), start, end))
    return out


def load_intervals(path):
    """Migration intervals from a file: CSV ``host,start,end`` (header
    row; Unix seconds or ISO 8601) or JSON ``[[host, start, end], ...]`` /
    ``[{"host":..., "start":..., "end":...}]``.
    """
    with open(path, encoding='utf-8') as f:
        text = f.read()
    if text.lstrip().startswith('['):
        rows = json.loads(text)
        rows = [(r['host'], r['start'], r['end']) if isinstance(r, dict)
                else tuple(r) for r in rows]
    else:
        reader = csv.DictReader(text.splitlines())
        missing = {'host', 'start', 'end'} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f'{path}: CSV header lacks {sorted(missing)} '
                             '(expected host,start,end)')
        rows = [(r['host'], r['start'], r['end']) for r in reader]
    try:
        return check_intervals(rows)
    except ValueError as exc:
        raise ValueError(f'{path}: {exc}') from None


def _get(obj, key, default=None):
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def intervals_from_actions(actions, min_duration=60.0):
    """Migration intervals from Watcher actions (objects or dicts).

    Every ``migrate`` action that started (state ONGOING, SUCCEEDED or
    FAILED: a failed live migration also disturbed both hosts) gives an
    interval from its ``created_at`` to its ``updated_at`` (at least
    ``min_duration`` long) on its source and its destination node.
    """
    out = []
    for a in actions or ():
        if _get(a, 'action_type') != 'migrate':
            continue
        if str(_get(a, 'state', '')).upper() not in ('ONGOING', 'SUCCEEDED',
                                                     'FAILED'):
            continue
        params = _get(a, 'input_parameters') or {}
        start = _get(a, 'created_at')
        if start is None:
            continue
        start = _parse_time(start)
        end = _get(a, 'updated_at')
        end = _parse_time(end) if end is not None else start
        end = max(end, start + float(min_duration))
        for key in ('source_node', 'destination_node'):
            host = params.get(key)
            if host:
                out.append((str(host), start, end))
    return out


def contaminated_samples(windows, t_index, host_index, window_steps,
                         horizon_steps, intervals):
    """Which samples a migration touched (bool, one per sample).

    Sample (host, t) sees the window ``[T - window, T)`` and is labelled
    from ``[T, T + horizon)`` with ``T = times[0] + t * step``. A migration
    on that host (as source or destination) overlapping that span changed
    what the sample shows: the relieved source never reaches the failure it
    was heading for, the destination carries extra load. Such a sample
    teaches the model that hosts heading for failure recover on their own,
    so it is dropped from training.
    """
    t_index = np.asarray(t_index, dtype=int)
    host_index = np.asarray(host_index, dtype=int)
    mask = np.zeros(t_index.shape, dtype=bool)
    intervals = check_intervals(intervals)
    if not intervals or t_index.size == 0:
        return mask
    step = float(windows.step)
    T = float(windows.times[0]) + step * t_index
    lo, hi = T - window_steps * step, T + horizon_steps * step
    rows = {name: i for i, name in enumerate(windows.names)}
    for host, start, end in intervals:
        i = rows.get(host)
        if i is None:
            continue
        mask |= (host_index == i) & (start < hi) & (end >= lo)
    return mask
