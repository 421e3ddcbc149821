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

"""Feature sets: the paper's 14 window statistics (v1) and a multi-scale set.

Feature schema v1 (:mod:`features`) summarises a host's whole window. A
gradient-boosted risk model gains from looking at the same window at
several time scales: the last few samples (lags), rolling statistics over
the last quarter / half of the window, a short-term against a long-term
trend, the mean over the trigger period (the failure quantity itself), and
the position in the load cycle (from the decision time's clock, so it needs
no extra history). The multi-scale set is the v1 columns followed by these.

A bundle records its ``feature_set`` and ``feature_params`` in its metadata
(absent means ``v1``), so v1 bundles keep loading unchanged and the
strategy, which reads only ``window`` seconds of history, computes exactly
the columns the model was trained on.
"""

import warnings

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from watcher_failpredict.prediction import features as feat

FEATURE_SETS = ('v1', 'multiscale')

_LAGS = (1, 2, 3, 5, 10)


def default_params(window_steps, period_steps, cycle=None):
    """Parameters of the multi-scale set for a window of window_steps.

    :param cycle: length of the load cycle in seconds (e.g. 86400), or None
        when there is no known cycle (the cycle columns are then 0)
    """
    w = int(window_steps)
    scales = sorted({s for s in (max(2, w // 8), max(2, w // 4),
                                 max(2, w // 2)) if 2 <= s < w})
    return {'window_steps': w, 'period_steps': int(min(period_steps, w)),
            'lags': [k for k in _LAGS if k <= w], 'scales': scales,
            'cycle': float(cycle) if cycle else None}


def feature_names(feature_set='v1', params=None):
    """Column names of a feature set (v1 ones first in every set)."""
    names = feat.feature_names()
    if feature_set == 'v1':
        return names
    if feature_set != 'multiscale':
        raise ValueError(f'unknown feature set {feature_set!r}; known: '
                         f'{FEATURE_SETS}')
    if not params:
        raise ValueError('the multiscale feature set needs its params')
    names = list(names)
    names += [f'cpu_lag{k}' for k in params['lags']]
    for s in params['scales']:
        names += [f'cpu_mean_{s}', f'cpu_std_{s}', f'cpu_max_{s}',
                  f'cpu_slope_{s}']
    names += ['cpu_period_mean', 'cycle_sin', 'cycle_cos']
    return names


def _multiscale_extra(cpu, decision_times, params):
    """The multi-scale columns beyond v1; cpu is (..., w)."""
    cols = []
    for k in params['lags']:
        cols.append(cpu[..., -k])
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        for s in params['scales']:
            part = cpu[..., -s:]
            cols += [np.nanmean(part, -1), np.nanstd(part, -1),
                     np.nanmax(part, -1), feat.nan_slope(part)]
        cols.append(np.nanmean(cpu[..., -params['period_steps']:], -1))
    t = np.broadcast_to(np.asarray(decision_times, float), cpu.shape[:-1])
    if params.get('cycle'):
        phase = 2 * np.pi * np.mod(t, params['cycle']) / params['cycle']
        cols += [np.sin(phase), np.cos(phase)]
    else:
        cols += [np.zeros(t.shape), np.zeros(t.shape)]
    return np.stack(cols, axis=-1)


def features_from_arrays(arrays, decision_times, feature_set='v1',
                         params=None):
    """Features of windows given per metric (METRIC_ORDER), shape (..., w).

    :param decision_times: Unix seconds at the end of each window
        (broadcast against the leading shape)
    """
    base = feat.features_from_arrays(*arrays)
    if feature_set == 'v1':
        return base
    feature_names(feature_set, params)      # validates the set
    cpu = np.asarray(arrays[0], dtype=float)
    extra = _multiscale_extra(cpu, decision_times, params)
    out = np.concatenate([base, extra], axis=-1)
    out[np.isnan(base[..., 0])] = np.nan
    return out


def host_features(windows, window_steps, feature_set='v1', params=None):
    """Per-host features of the last window_steps of ``windows``."""
    if feature_set == 'v1':
        return feat.host_features(windows, window_steps)
    n = len(feature_names(feature_set, params))
    if len(windows.names) == 0:
        return np.empty((0, n))
    arrays = feat.window_arrays(windows, window_steps)
    end = (float(windows.times[-1]) + windows.step if len(windows.times)
           else 0.0)
    return features_from_arrays(arrays, end, feature_set, params)


def metric_array(windows, metric):
    """``windows.data[metric]`` as floats; all NaN when it is absent."""
    arr = windows.data.get(metric)
    if arr is None:
        return np.full((len(windows.names), len(windows.times)), np.nan)
    return np.asarray(arr, dtype=float)


def window_features(windows, window_steps, times, feature_set='v1',
                    params=None):
    """Features ``(n_hosts, len(times), n_features)`` at decision times.

    Decision time t (a column index) sees columns ``[t - window_steps,
    t)``, as the strategy does at that moment.
    """
    n_hosts = len(windows.names)
    times = np.asarray(times, dtype=int)
    n_feat = len(feature_names(feature_set, params))
    out = np.full((n_hosts, times.size, n_feat), np.nan)
    if times.size == 0:
        return out
    arrays = [metric_array(windows, m) for m in feat.METRIC_ORDER]
    starts = times - window_steps
    clock = float(windows.times[0]) + windows.step * times
    for h in range(n_hosts):   # one host at a time bounds the temporaries
        views = [sliding_window_view(a[h], window_steps)[starts]
                 for a in arrays]
        out[h] = features_from_arrays(views, clock, feature_set, params)
    return out
