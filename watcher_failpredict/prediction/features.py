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

"""Features of a host's recent resource windows.

A host is described by summary statistics of its last ``window_steps`` steps
of every host metric (see :data:`~watcher_failpredict.datasources.base.
HOST_METRICS`). The statistics say where the CPU is now (last, mean), how
it moves (std, max, min, slope) and what else is busy on the host (memory,
load, disk and network I/O), because a saturation is usually announced by a
rising CPU, not only by a high one.

Everything here is a pure function of arrays. :func:`features_from_arrays`
works on any leading shape, so training can feed it every sliding window of
a long history at once (``numpy.lib.stride_tricks.sliding_window_view``)
while the strategy feeds it one window per host.

Missing samples are NaN and every statistic ignores them. A host with no CPU
sample at all in the window gets a row of NaN: callers must treat such a
host as "cannot evaluate", never as idle. Other metrics missing only leave
their own features NaN (the model's imputer fills them).
"""

import warnings

import numpy as np

#: Bump whenever the features' meaning, order or count changes: a model
#: bundle trained on another schema is refused at load time.
FEATURE_SCHEMA_VERSION = 1

#: The order in which host metrics are passed to features_from_arrays.
METRIC_ORDER = ('cpu', 'memory', 'load', 'disk', 'net')

#: Metrics every feature set uses only as their mean over the window: a
#: window filled with that mean gives the same features, so the strategy
#: reads just the mean (tests/unit/prediction/test_features.py pins this).
MEAN_ONLY_METRICS = ('disk', 'net')

# (metric, statistic) in column order.
_FEATURES = (
    ('cpu', 'last'), ('cpu', 'mean'), ('cpu', 'std'), ('cpu', 'max'),
    ('cpu', 'min'), ('cpu', 'slope'),
    ('memory', 'last'), ('memory', 'mean'), ('memory', 'slope'),
    ('load', 'last'), ('load', 'mean'), ('load', 'slope'),
    ('disk', 'log1p_mean'),
    ('net', 'log1p_mean'),
)


def feature_names():
    """Names of the feature columns, in order (``<metric>_<statistic>``).

    Slopes are in metric units per window step.
    """
    return [f'{metric}_{stat}' for metric, stat in _FEATURES]


def nan_last(a):
    """Last non-NaN value along the last axis (NaN when there is none)."""
    ok = ~np.isnan(a)
    n = a.shape[-1]
    # index of the last valid sample; 0 when none (masked below)
    idx = n - 1 - np.argmax(ok[..., ::-1], axis=-1)
    last = np.take_along_axis(a, idx[..., None], axis=-1)[..., 0]
    return np.where(ok.any(axis=-1), last, np.nan)


def nan_slope(a):
    """Least-squares slope per step over the non-NaN samples.

    0 when fewer than two samples are present (no evidence of a trend),
    NaN when there is no sample at all.
    """
    ok = ~np.isnan(a)
    count = ok.sum(axis=-1)
    x = np.arange(a.shape[-1], dtype=float)
    xs = np.where(ok, x, 0.0)
    vs = np.where(ok, a, 0.0)
    with np.errstate(invalid='ignore', divide='ignore'):
        x_mean = xs.sum(axis=-1) / count
        v_mean = vs.sum(axis=-1) / count
        dx = np.where(ok, x - x_mean[..., None], 0.0)
        dv = np.where(ok, a - v_mean[..., None], 0.0)
        num = (dx * dv).sum(axis=-1)
        den = (dx * dx).sum(axis=-1)
        slope = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return np.where(count > 0, slope, np.nan)


def _stat(a, stat):
    with warnings.catch_warnings():
        # all-NaN slices legitimately give NaN here
        warnings.simplefilter('ignore', RuntimeWarning)
        if stat == 'last':
            return nan_last(a)
        if stat == 'mean':
            return np.nanmean(a, axis=-1)
        if stat == 'std':
            return np.nanstd(a, axis=-1)
        if stat == 'max':
            return np.nanmax(a, axis=-1)
        if stat == 'min':
            return np.nanmin(a, axis=-1)
        if stat == 'slope':
            return nan_slope(a)
        if stat == 'log1p_mean':
            return np.log1p(np.clip(np.nanmean(a, axis=-1), 0.0, None))
    raise ValueError(f'unknown statistic {stat!r}')


def features_from_arrays(cpu, memory, load, disk, net):
    """Feature matrix of windows given as plain arrays.

    Each argument has shape ``(..., window_steps)`` (the same shape for
    all); the result has shape ``(..., len(feature_names()))``. A window
    whose CPU is entirely NaN yields a row of NaN.
    """
    arrays = dict(zip(METRIC_ORDER, (cpu, memory, load, disk, net)))
    shape = np.shape(cpu)
    for metric, arr in arrays.items():
        arrays[metric] = np.asarray(arr, dtype=float)
        if arrays[metric].shape != shape:
            raise ValueError(f'{metric} window has shape '
                             f'{arrays[metric].shape}, cpu has {shape}')
    if len(shape) == 0 or shape[-1] == 0:
        raise ValueError(f'windows need at least one step, got shape {shape}')
    out = np.stack([_stat(arrays[m], s) for m, s in _FEATURES], axis=-1)
    no_cpu = np.isnan(arrays['cpu']).all(axis=-1)
    out[no_cpu] = np.nan
    return out


def last_steps(arr, window_steps):
    """The last ``window_steps`` columns of ``arr``, NaN-padded on the left.

    A history shorter than the window (a host that appeared mid-window, a
    young cluster) is treated as missing samples, not as zeros.
    """
    arr = np.asarray(arr, dtype=float)
    n = arr.shape[-1]
    if n >= window_steps:
        return arr[..., n - window_steps:]
    pad = np.full(arr.shape[:-1] + (window_steps - n,), np.nan)
    return np.concatenate([pad, arr], axis=-1)


def window_arrays(windows, window_steps):
    """Per-metric ``(n_hosts, window_steps)`` arrays of a ClusterWindows.

    A metric absent from ``windows.data`` is all NaN.
    """
    window_steps = int(window_steps)
    if window_steps < 1:
        raise ValueError(f'window_steps must be >= 1, got {window_steps}')
    n_hosts = len(windows.names)
    out = []
    for metric in METRIC_ORDER:
        arr = windows.data.get(metric)
        if arr is None:
            arr = np.full((n_hosts, window_steps), np.nan)
        out.append(last_steps(arr, window_steps))
    return out


def host_features(windows, window_steps):
    """Features of every host of ``windows`` over its last window_steps.

    :param windows: a ClusterWindows of host metrics
    :returns: array ``(len(windows.names), len(feature_names()))``; rows of
        NaN for hosts without any CPU sample in the window
    """
    if len(windows.names) == 0:
        return np.empty((0, len(_FEATURES)))
    return features_from_arrays(*window_arrays(windows, window_steps))
