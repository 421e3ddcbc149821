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

The cyclic set adds history at the scale of each host's own load cycle
(issue 11): what the host did one cycle ago over the coming horizon (the
seasonal-naive forecast of the trigger-period peak, and that forecast moved
by how much this cycle runs above or below the last), and each simple
forecaster's recent error (persistence, seasonal naive, drift) over the
window, so that a learner can follow whichever rule works on a host and
leave one that stops working. These columns read one more series, the
host's CPU one cycle earlier shifted forward by the horizon
(:data:`LAST_CYCLE`): training derives it from the history with each host's
cycle (:func:`with_last_cycle`); the strategy reads it in one more bulk
request.

A bundle records its ``feature_set`` and ``feature_params`` in its metadata
(absent means ``v1``), so v1 bundles keep loading unchanged and the
strategy, which reads only ``window`` seconds of history, computes exactly
the columns the model was trained on.
"""

import dataclasses
import warnings

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from watcher_failpredict.prediction import features as feat

FEATURE_SETS = ('v1', 'multiscale', 'cyclic')

#: ``windows.data`` key of a host's CPU one load cycle earlier, shifted
#: forward by the horizon: column j holds the CPU at ``times[j] - cycle +
#: horizon``, so the window's last horizon steps are what the host did over
#: the coming horizon one cycle ago. NaN for a host without a cycle.
LAST_CYCLE = 'cpu_last_cycle'

_CYCLIC = ('cycle_ahead_peak', 'cycle_ahead_mean', 'cycle_now_mean',
           'cycle_level_change', 'cycle_ahead_peak_moved',
           'err_persistence', 'err_seasonal', 'err_drift')

_LAGS = (1, 2, 3, 5, 10)


def default_params(window_steps, period_steps, cycle=None,
                   horizon_steps=None, host_cycles=None):
    """Parameters of the multi-scale set for a window of window_steps.

    :param cycle: length of the load cycle in seconds (e.g. 86400), or None
        when there is no known cycle (the cycle columns are then 0)
    :param horizon_steps, host_cycles: the cyclic set's (the horizon, and
        each host's cycle in seconds, 0 for none; see :func:`host_lags`)
    """
    w = int(window_steps)
    scales = sorted({s for s in (max(2, w // 8), max(2, w // 4),
                                 max(2, w // 2)) if 2 <= s < w})
    params = {'window_steps': w, 'period_steps': int(min(period_steps, w)),
              'lags': [k for k in _LAGS if k <= w], 'scales': scales,
              'cycle': float(cycle) if cycle else None}
    if horizon_steps is not None:
        params['horizon_steps'] = int(horizon_steps)
        params['host_cycles'] = {str(k): float(v) for k, v in
                                 (host_cycles or {}).items()}
    return params


def feature_names(feature_set='v1', params=None):
    """Column names of a feature set (v1 ones first in every set)."""
    names = feat.feature_names()
    if feature_set == 'v1':
        return names
    if feature_set not in FEATURE_SETS:
        raise ValueError(f'unknown feature set {feature_set!r}; known: '
                         f'{FEATURE_SETS}')
    if not params:
        raise ValueError(f'the {feature_set} feature set needs its params')
    if feature_set == 'cyclic' and 'horizon_steps' not in params:
        raise ValueError('the cyclic feature set needs horizon_steps')
    names = list(names)
    names += [f'cpu_lag{k}' for k in params['lags']]
    for s in params['scales']:
        names += [f'cpu_mean_{s}', f'cpu_std_{s}', f'cpu_max_{s}',
                  f'cpu_slope_{s}']
    names += ['cpu_period_mean', 'cycle_sin', 'cycle_cos']
    if feature_set == 'cyclic':
        names += list(_CYCLIC)
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


def _nan_abs_error(actual, forecast):
    return np.nanmean(np.abs(actual - forecast), -1)


def _cyclic_extra(cpu, last, params):
    """The cyclic columns (_CYCLIC); cpu and last (LAST_CYCLE) are (..., w).

    Errors are of forecasts ``h`` steps ahead made inside the window, so
    they use no sample after the decision time.
    """
    w = cpu.shape[-1]
    h = max(min(int(params['horizon_steps']), w), 1)
    p = max(min(int(params['period_steps']), w), 1)
    nan = np.full(cpu.shape[:-1], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        # trigger-period means ending at each step of the coming horizon,
        # one cycle ago: seasonal naive's forecast of the failure quantity
        span = last[..., max(w - h - p + 1, 0):]
        means = np.nanmean(sliding_window_view(
            span, min(p, span.shape[-1]), axis=-1), -1)
        peak = np.nanmax(means, -1)
        ahead_mean = np.nanmean(last[..., w - h:], -1)
        before = last[..., max(w - h - p, 0):w - h]
        now_mean = np.nanmean(before, -1) if before.shape[-1] else nan
        change = np.nanmean(cpu[..., w - p:], -1) - now_mean
        if w > h:
            err_persistence = _nan_abs_error(cpu[..., h:], cpu[..., :w - h])
            err_seasonal = _nan_abs_error(cpu[..., h:], last[..., :w - h])
        else:
            err_persistence = err_seasonal = nan
        s = max(h // 2, 1)
        if w > h + s:
            base, prev = cpu[..., s:w - h], cpu[..., :w - h - s]
            err_drift = _nan_abs_error(cpu[..., h + s:],
                                       base + (base - prev) * (h / s))
        else:
            err_drift = nan
    return np.stack([peak, ahead_mean, now_mean, change, peak + change,
                     err_persistence, err_seasonal, err_drift], axis=-1)


def features_from_arrays(arrays, decision_times, feature_set='v1',
                         params=None, last_cycle=None):
    """Features of windows given per metric (METRIC_ORDER), shape (..., w).

    :param decision_times: Unix seconds at the end of each window
        (broadcast against the leading shape)
    :param last_cycle: the cyclic set's :data:`LAST_CYCLE` windows, same
        shape as the CPU's (None: all NaN, no cycle known)
    """
    base = feat.features_from_arrays(*arrays)
    if feature_set == 'v1':
        return base
    feature_names(feature_set, params)      # validates the set
    cpu = np.asarray(arrays[0], dtype=float)
    parts = [base, _multiscale_extra(cpu, decision_times, params)]
    if feature_set == 'cyclic':
        last = (np.full(cpu.shape, np.nan) if last_cycle is None
                else np.asarray(last_cycle, dtype=float))
        if last.shape != cpu.shape:
            raise ValueError(f'{LAST_CYCLE} windows have shape {last.shape}'
                             f', cpu has {cpu.shape}')
        parts.append(_cyclic_extra(cpu, last, params))
    out = np.concatenate(parts, axis=-1)
    out[np.isnan(base[..., 0])] = np.nan
    return out


def host_cycle(params, name):
    """Host ``name``'s cycle in seconds (0 for none): the bundle's own for
    it, else the declared ``cycle``.
    """
    cycle = (params.get('host_cycles') or {}).get(name, params.get('cycle'))
    return float(cycle or 0.0)


def host_lags(params, names, step):
    """Seconds back to read each host's :data:`LAST_CYCLE` (a multiple of
    ``step``): its cycle minus the horizon; 0 for a host without a cycle
    or with one not longer than the horizon (it would read the future).

    A host the bundle has no cycle for takes the declared ``cycle``.
    """
    horizon_s = int(params['horizon_steps']) * step
    out = np.zeros(len(names))
    for i, name in enumerate(names):
        lag = host_cycle(params, name) - horizon_s
        out[i] = round(lag / step) * step if lag >= step else 0.0
    return out


def with_last_cycle(windows, params):
    """``windows`` with :data:`LAST_CYCLE` derived from its own CPU history
    (training: the history holds the cycle before each decision time).
    Steps before a host's first cycle are NaN.
    """
    cpu = metric_array(windows, 'cpu')
    last = np.full(cpu.shape, np.nan)
    lags = host_lags(params, windows.names, windows.step)
    for i, lag in enumerate(lags):
        k = int(round(lag / windows.step))
        if 0 < k < cpu.shape[1]:
            last[i, k:] = cpu[i, :-k]
    return dataclasses.replace(windows, data=dict(windows.data,
                                                  **{LAST_CYCLE: last}))


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
    last = None
    if feature_set == 'cyclic' and LAST_CYCLE in windows.data:
        last = feat.last_steps(windows.data[LAST_CYCLE], window_steps)
    return features_from_arrays(arrays, end, feature_set, params, last)


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
    if feature_set == 'cyclic':
        if LAST_CYCLE not in windows.data:
            windows = with_last_cycle(windows, params)
        arrays.append(metric_array(windows, LAST_CYCLE))
    starts = times - window_steps
    clock = float(windows.times[0]) + windows.step * times
    for h in range(n_hosts):   # one host at a time bounds the temporaries
        views = [sliding_window_view(a[h], window_steps)[starts]
                 for a in arrays]
        out[h] = features_from_arrays(
            views[:len(feat.METRIC_ORDER)], clock, feature_set, params,
            views[len(feat.METRIC_ORDER)] if feature_set == 'cyclic'
            else None)
    return out
