"""Training samples from a long history of host windows.

One sample per host per decision time ``t`` (a column boundary of the
history): the features see columns ``[t - window_steps, t)``, exactly what
the strategy would see at ``t``; the label says whether the host is in
failure state at any step of ``(t, t + horizon]``, i.e. columns
``t .. t + horizon_steps - 1`` (column ``s`` ends at ``s + 1`` steps).

Features of all decision times of one host are computed at once over a
sliding-window view of its history, so a day of 10 s data is a few
vectorised passes, not a Python loop per step.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from watcher_failpredict.prediction import features as feat
from watcher_failpredict.prediction import labels as lab


def _full(windows, metric):
    arr = windows.data.get(metric)
    if arr is None:
        return np.full((len(windows.names), len(windows.times)), np.nan)
    return np.asarray(arr, dtype=float)


def sample_times(n_steps, window_steps, horizon_steps, stride=1):
    """Decision times t (column indices) with a full window and a label."""
    stride = int(stride)
    if stride < 1:
        raise ValueError(f'stride must be >= 1, got {stride}')
    return np.arange(window_steps, n_steps - horizon_steps + 1, stride)


def window_features(windows, window_steps, times):
    """Features ``(n_hosts, len(times), n_features)`` at decision times."""
    n_hosts = len(windows.names)
    times = np.asarray(times, dtype=int)
    out = np.full((n_hosts, times.size, len(feat.feature_names())), np.nan)
    if times.size == 0:
        return out
    arrays = [_full(windows, m) for m in feat.METRIC_ORDER]
    starts = times - window_steps
    for h in range(n_hosts):   # one host at a time bounds the temporaries
        views = [sliding_window_view(a[h], window_steps)[starts]
                 for a in arrays]
        out[h] = feat.features_from_arrays(*views)
    return out


def make_dataset(windows, window_steps, period_steps, horizon_steps,
                 threshold, stride=1):
    """Samples ``(X, y, t_index, host_index)`` of a history.

    :param windows: ClusterWindows of host metrics over the whole history
    :param window_steps: feature window length in steps
    :param period_steps: trigger period in steps (failure = rolling mean
        CPU over it >= threshold)
    :param horizon_steps: how far ahead the label looks, in steps
    :param threshold: CPU percent of the failure state
    :param stride: keep every stride-th decision time
    :returns: X float (n, n_features); y int (n,) 1 = failure within the
        horizon; t_index (n,) decision time as a column index of windows;
        host_index (n,) row of windows.names. Samples whose label is
        unknown or whose CPU features are NaN are dropped. Ordered by
        host, then time.
    """
    window_steps = int(window_steps)
    horizon_steps = int(horizon_steps)
    if window_steps < 1 or horizon_steps < 1:
        raise ValueError('window_steps and horizon_steps must be >= 1, got '
                         f'{window_steps} and {horizon_steps}')
    cpu = _full(windows, 'cpu')
    n_hosts, n_steps = cpu.shape
    state = lab.failure_state(cpu, threshold, period_steps)
    within = lab.failure_within(state, horizon_steps)
    times = sample_times(n_steps, window_steps, horizon_steps, stride)
    n_feat = len(feat.feature_names())
    if times.size == 0 or n_hosts == 0:
        return (np.empty((0, n_feat)), np.empty(0, dtype=int),
                np.empty(0, dtype=int), np.empty(0, dtype=int))
    X = window_features(windows, window_steps, times)
    y = within[:, times - 1]
    known = ~np.ma.getmaskarray(y) & ~np.isnan(X[..., 0])
    host_idx, t_pos = np.nonzero(known)
    return (X[host_idx, t_pos], np.asarray(y.data[host_idx, t_pos], int),
            times[t_pos], host_idx)


def make_destination_dataset(windows, window_steps, period_steps,
                             horizon_steps, stride=1):
    """Samples of the paper's fixed-host framing.

    X at time t is the concatenation, in ``windows.names`` order, of every
    host's features; y is the index of the host whose rolling-mean CPU
    (over the trigger period) peaks lowest in ``(t, t + horizon]``, i.e.
    the best migration destination in hindsight. Times where any host has
    no CPU in its window or no known future are dropped.

    :returns: X (n, n_hosts * n_features), y (n,), t_index (n,)
    """
    cpu = _full(windows, 'cpu')
    n_hosts, n_steps = cpu.shape
    times = sample_times(n_steps, window_steps, horizon_steps, stride)
    n_feat = len(feat.feature_names())
    if times.size == 0 or n_hosts == 0:
        return (np.empty((0, n_hosts * n_feat)), np.empty(0, dtype=int),
                np.empty(0, dtype=int))
    X = window_features(windows, window_steps, times)    # (h, t, f)
    peak = lab.future_peak(lab.rolling_mean(cpu, period_steps),
                           horizon_steps)[:, times - 1]  # (h, t)
    ok = ~np.isnan(X[..., 0]).any(axis=0) & ~np.isnan(peak).any(axis=0)
    X = np.transpose(X, (1, 0, 2)).reshape(times.size, n_hosts * n_feat)
    y = np.argmin(np.where(np.isnan(peak), np.inf, peak), axis=0)
    return X[ok], y[ok], times[ok]
