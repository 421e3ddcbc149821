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

"""Decoding Prometheus answers into per-name series (pure functions).

A range query's ``data`` (``{'resultType': 'matrix', 'result': [{'metric':
{labels}, 'values': [[t, "v"], ...]}]}``) becomes ``{name: (window
starts, values)}``, the shape
:meth:`~watcher_failpredict.datasources.base.WindowsDataSource.fetch`
returns: the name is the series' value of the host (or instance) label,
each evaluation time ``s + step - EPSILON`` becomes its window's start
``s``, and values that are not finite (``NaN``, ``+Inf``: a division by a
zero total, a stale series) become NaN, which the windows treat as
missing.
"""

import numpy as np

from watcher_failpredict.datasources.prometheus import query


def matrix(data, label, first_eval, step):
    """``{name: (window starts, values)}`` of one range query's answer.

    :param label: the label whose value names each series
    :param first_eval: the first evaluation time of the query (the first
        window's end minus EPSILON); its window starts at
        ``first_eval + EPSILON - step``
    :raises ValueError: on an answer that is not a matrix of
        ``[time, "value"]`` rows, or a series without ``label`` or named
        twice
    """
    if data.get('resultType') != 'matrix':
        raise ValueError(f'expected a matrix, got {data.get("resultType")!r}')
    out = {}
    first_start = first_eval + query.EPSILON - step
    for series in data.get('result') or []:
        labels = series.get('metric') or {}
        name = labels.get(label)
        if name is None:
            raise ValueError(f'a series without the {label!r} label: '
                             f'{labels}')
        if name in out:
            raise ValueError(f'two series for {label}={name!r}')
        rows = series.get('values') or []
        if rows and len(rows[0]) != 2:
            raise ValueError(f'expected [time, value] rows, got {rows[0]!r}')
        t = np.array([float(r[0]) for r in rows], dtype=float)
        v = np.array([float(r[1]) for r in rows], dtype=float)
        v[~np.isfinite(v)] = np.nan
        k = np.rint((t - first_eval) / step)
        out[name] = (first_start + step * k, v)
    return out


def vector_names(data, label='__name__'):
    """The set of ``label`` values of an instant query's vector answer."""
    if data.get('resultType') != 'vector':
        raise ValueError(f'expected a vector, got {data.get("resultType")!r}')
    return {(s.get('metric') or {}).get(label)
            for s in data.get('result') or []}


def vector(data, label):
    """``{name: value}`` of an instant query's vector answer (NaN for a
    value that is not finite).
    """
    if data.get('resultType') != 'vector':
        raise ValueError(f'expected a vector, got {data.get("resultType")!r}')
    out = {}
    for series in data.get('result') or []:
        name = (series.get('metric') or {}).get(label)
        if name is None:
            raise ValueError(f'a series without the {label!r} label')
        if name in out:
            raise ValueError(f'two series for {label}={name!r}')
        value = float(series['value'][1])
        out[name] = value if np.isfinite(value) else np.nan
    return out
