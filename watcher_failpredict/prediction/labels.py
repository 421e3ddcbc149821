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

"""Labels: is a host in failure state, and will it be within the horizon?

The paper's failure state is "a server whose average CPU use is at or above
90 %". We make "average" precise the way the strategy's trigger does: the
mean CPU over the trigger period ending at a step. Both functions are pure
and work on ``(n_hosts, n_steps)`` arrays whose columns are window steps.
"""

import math
import warnings

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def rolling_mean(cpu, period_steps, min_fraction=0.5):
    """Mean of ``cpu[h, t-period_steps+1 .. t]`` ignoring NaN.

    NaN where fewer than ``ceil(min_fraction * period_steps)`` samples are
    present. Shape (n_hosts, n_steps).
    """
    cpu = np.asarray(cpu, dtype=float)
    if cpu.ndim != 2:
        raise ValueError(f'cpu must be (n_hosts, n_steps), got {cpu.shape}')
    period_steps = int(period_steps)
    if period_steps < 1:
        raise ValueError(f'period_steps must be >= 1, got {period_steps}')
    if not 0 < min_fraction <= 1:
        raise ValueError(f'min_fraction must be in (0, 1], got '
                         f'{min_fraction}')
    ok = ~np.isnan(cpu)
    zero = np.zeros((cpu.shape[0], 1))
    csum = np.concatenate([zero, np.cumsum(np.where(ok, cpu, 0.0), 1)], 1)
    ccnt = np.concatenate([zero, np.cumsum(ok, 1)], 1)
    hi = np.arange(1, cpu.shape[1] + 1)
    lo = np.maximum(hi - period_steps, 0)
    sums = csum[:, hi] - csum[:, lo]
    counts = ccnt[:, hi] - ccnt[:, lo]
    need = max(1, math.ceil(min_fraction * period_steps))
    with np.errstate(invalid='ignore', divide='ignore'):
        mean = sums / np.maximum(counts, 1)
    return np.where(counts >= need, mean, np.nan)


def failure_state(cpu, threshold, period_steps, min_fraction=0.5):
    """Whether each host is in failure state at each step.

    ``state[h, t]`` is True when the mean of ``cpu[h, t-period_steps+1 ..
    t]`` (NaN samples ignored) is >= ``threshold``. A mean over fewer than
    ``ceil(min_fraction * period_steps)`` real samples (gaps, the first
    steps of the history) is not evidence of a failure and gives False.

    :param cpu: array (n_hosts, n_steps), percent, NaN = missing
    :param threshold: percent, e.g. 90.0
    :param period_steps: length of the trigger period in steps (>= 1)
    :returns: bool array (n_hosts, n_steps)
    """
    mean = rolling_mean(cpu, period_steps, min_fraction)
    with np.errstate(invalid='ignore'):
        return ~np.isnan(mean) & (mean >= threshold)


def failure_within(state, horizon_steps):
    """Whether each host enters (or stays in) failure within the horizon.

    ``label[h, t]`` is True when ``state[h, t+1 .. t+horizon_steps]`` holds
    any True. The last ``horizon_steps`` columns look past the end of the
    data: they are unknown and masked (not False, which would teach a model
    that the end of every history is calm).

    :param state: bool array (n_hosts, n_steps), from failure_state
    :param horizon_steps: >= 1
    :returns: numpy.ma.MaskedArray of bool, same shape
    """
    state = np.asarray(state, dtype=bool)
    if state.ndim != 2:
        raise ValueError(f'state must be (n_hosts, n_steps), got '
                         f'{state.shape}')
    horizon_steps = int(horizon_steps)
    if horizon_steps < 1:
        raise ValueError(f'horizon_steps must be >= 1, got {horizon_steps}')
    n = state.shape[1]
    csum = np.concatenate([np.zeros((state.shape[0], 1), dtype=int),
                           np.cumsum(state, axis=1)], axis=1)
    t = np.arange(n)
    hi = np.minimum(t + 1 + horizon_steps, n)
    lo = np.minimum(t + 1, n)
    label = (csum[:, hi] - csum[:, lo]) > 0
    mask = np.broadcast_to(t >= n - horizon_steps, state.shape).copy()
    return np.ma.MaskedArray(label, mask=mask)


def future_peak(values, horizon_steps):
    """Max of ``values[h, t+1 .. t+horizon_steps]``, NaN where unknown.

    Used by the paper's fixed-host framing (the best destination is the host
    with the lowest future peak); NaN for the last horizon_steps columns.
    """
    values = np.asarray(values, dtype=float)
    n = values.shape[1]
    out = np.full(values.shape, np.nan)
    if n > horizon_steps:
        view = sliding_window_view(values[:, 1:], horizon_steps, axis=1)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', RuntimeWarning)
            out[:, :n - horizon_steps] = np.nanmax(view, axis=-1)
    return out


def peak_targets(cpu, period_steps, horizon_steps, t_index, host_index):
    """The future peak a destination ranking cares about, per sample.

    For sample (host, decision time t) of :func:`pipeline.make_dataset`:
    the highest trigger-period mean CPU over columns ``t .. t +
    horizon_steps - 1`` (the columns the sample's label looks at), i.e. how
    close the host comes to the failure line within the horizon. It is the
    quantity destination regret is measured on, and the peak regressor's
    target. NaN where unknown.
    """
    t_index = np.asarray(t_index, dtype=int)
    host_index = np.asarray(host_index, dtype=int)
    if np.any(t_index < 1):
        raise ValueError('decision times must be >= 1 column')
    peak = future_peak(rolling_mean(cpu, period_steps), horizon_steps)
    return peak[host_index, t_index - 1]
