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

"""Each host's load cycle, for the cyclic feature set.

A cycle is declared (``train --cycle 86400``: every host repeats daily) or,
when none is, estimated per host from its whole history: the first strong
peak of the autocorrelation of its trigger-period mean CPU
(:func:`baselines.estimate_cycle_steps`), longer than the horizon and at
most half the history. The whole history, not only the training part:
the cycle is a property of the host that the bundle must know for the
decisions after it, and a cycle of 2 h needs 4 h of history to be found.
It is the one thing the held-out scores share with the held-out part (its
length, never a label). The cycles travel in the bundle (``feature_params``
``host_cycles``, in seconds, 0 for a host without one) and tell the
strategy how far back to read each host's last cycle.
"""

import numpy as np

from watcher_failpredict.prediction import baselines
from watcher_failpredict.prediction import feature_sets
from watcher_failpredict.prediction import labels as lab

#: The weakest autocorrelation at its cycle a host's history may show for
#: the cycle to count (the testbed's seasonal baseline uses the same).
MIN_CORRELATION = 0.5


def _gaps_filled(row):
    """A CPU row with its gaps linearly interpolated; None when empty."""
    ok = ~np.isnan(row)
    if ok.sum() < 2:
        return None
    idx = np.arange(row.size)
    return np.interp(idx, idx[ok], row[ok])


def estimate_host_cycles(cpu, step, period_steps, horizon_steps):
    """Cycle in seconds per row of ``cpu`` (hosts, steps); 0 for none.

    :param cpu: the history the cycles are estimated on
    """
    cpu = np.asarray(cpu, dtype=float)
    out = np.zeros(cpu.shape[0])
    rows = [(i, _gaps_filled(r)) for i, r in enumerate(cpu)]
    rows = [(i, r) for i, r in rows if r is not None]
    if not rows:
        return out
    values = lab.rolling_mean(np.stack([r for _, r in rows]), period_steps)
    values = values[:, period_steps:]
    if values.shape[1] < 4:
        return out
    found = baselines.estimate_cycle_steps(
        values, horizon_steps + 1, values.shape[1], MIN_CORRELATION)
    for (i, _), k in zip(rows, found):
        out[i] = float(k) * step
    return out


def cyclic_params(windows, steps, cycle=None):
    """The cyclic feature set's params for a history.

    :param steps: the history's (window, period, horizon) in steps
    :param cycle: declared cycle in seconds, or None to estimate each
        host's
    """
    w, p, h = steps
    host_cycles = {}
    if not cycle:
        cpu = feature_sets.metric_array(windows, 'cpu')
        found = estimate_host_cycles(cpu, windows.step, p, h)
        host_cycles = dict(zip(windows.names, found.tolist()))
    return feature_sets.default_params(w, p, cycle, horizon_steps=h,
                                       host_cycles=host_cycles)
