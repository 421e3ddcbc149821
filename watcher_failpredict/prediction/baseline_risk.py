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

"""The forecasting baselines and a random ranking as risk models.

Each class implements :class:`risk_model.RiskModel`, so the strategy can
rank destinations with it exactly as with a trained bundle: same trigger,
VNF choice, feasibility and cooldown, only the ranking differs (the
testbed compares policies this way). None has a peak regressor.

* :class:`CurrentCpuRisk`: the mean CPU over the trigger period now
  (least-CPU-now);
* :class:`BaselineRisk`: any score of :mod:`baselines` (persistence,
  least_cpu_now, mean_kstd, linear_trend, seasonal_naive) computed on the
  windows the strategy passes, optionally mapped to a probability by a
  :class:`baselines.ScoreCalibrator` fitted on a training stretch;
* :class:`RandomRisk`: a random risk per host (a random feasible
  destination).

A ranking needs the metadata the strategy reads (:data:`risk_model.
METADATA_KEYS`); ``period``, ``window`` and ``granularity`` are required
here too, they set the ranking's own lengths.
"""

import warnings

import numpy as np

from watcher_failpredict.prediction import baselines
from watcher_failpredict.prediction import risk_model

#: Score (CPU percent) of a host without a CPU sample in the window: it
#: ranks last.
NO_SAMPLE_SCORE = 1e6


def period_mean(windows, steps):
    """Per-host mean CPU over the last ``steps`` columns (NaN-aware)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        return np.nanmean(windows.data['cpu'][:, -steps:], axis=1)


def _period_steps(metadata):
    return max(metadata['period'] // metadata['granularity'], 1)


class CurrentCpuRisk(risk_model.RankingRisk):
    """Least-CPU-now: risk = mean CPU over the trigger period / 100."""

    def __init__(self, metadata):
        super().__init__(metadata)
        self.steps = _period_steps(metadata)

    def predict_risk(self, windows):
        return np.clip(period_mean(windows, self.steps) / 100.0, 0.0, None)


class BaselineRisk(risk_model.RankingRisk):
    """A forecasting baseline of :mod:`baselines` as a ranking.

    The score (a CPU level in percent) is computed on the windows the
    strategy passes, the move's load already added, at the decision time
    (the end of the windows), over the model's ``window``. Uncalibrated,
    risk = score / 100 (only the ranking matters to the destination
    choice); with a fitted ``calibrator`` it is the calibrated probability
    of failure, comparable with a model's. A host without a sample in the
    window ranks last.

    :param name: one of :data:`baselines.BASELINES`
    :param horizon_s: how far ahead ``linear_trend`` extrapolates and
        ``seasonal_naive`` looks (default: 0 for the trend, the
        metadata's horizon for the seasonal score)
    :param k: the ``mean_kstd`` multiplier
    :param cycle_s: the load cycle ``seasonal_naive`` looks back by
        (required for it)
    :param calibrator: a fitted :class:`baselines.ScoreCalibrator` of this
        score, or None
    """

    def __init__(self, metadata, name, horizon_s=None, k=2.0, cycle_s=None,
                 calibrator=None):
        if name not in baselines.BASELINES:
            raise ValueError(f'unknown baseline {name!r}; known: '
                             f'{", ".join(baselines.BASELINES)}')
        super().__init__(metadata)
        self.name = name
        self.k = float(k)
        g = metadata['granularity']
        self.window_steps = max(metadata['window'] // g, 2)
        self.period_steps = _period_steps(metadata)
        if horizon_s is None:
            horizon_s = metadata.get('horizon', 0) \
                if name == 'seasonal_naive' else 0.0
        self.horizon_steps = max(int(round(horizon_s / g)), 0)
        self.cycle_steps = None
        if name == 'seasonal_naive':
            if not cycle_s:
                raise ValueError('the seasonal_naive ranking needs the load '
                                 'cycle (cycle_s)')
            self.cycle_steps = max(int(round(cycle_s / g)),
                                   self.horizon_steps)
        self.calibrator = calibrator

    def score(self, windows):
        """The baseline's score (CPU percent) per host at the windows' end;
        NaN for a host without a sample in the window.
        """
        cpu = np.asarray(windows.data['cpu'], dtype=float)
        n_hosts, n_steps = cpu.shape
        t_index = np.full(n_hosts, n_steps)
        hosts = np.arange(n_hosts)
        return baselines.score(
            self.name, cpu, t_index, hosts, min(self.window_steps, n_steps),
            self.period_steps, self.horizon_steps, self.cycle_steps, self.k)

    def predict_risk(self, windows):
        score = self.score(windows)
        if self.calibrator is not None:
            risk = self.calibrator.predict_proba(score)[:, 1]
            return np.where(np.isfinite(score), risk, 1.0)
        return np.where(np.isfinite(score), np.clip(score, 0.0, None),
                        NO_SAMPLE_SCORE) / 100.0


class RandomRisk(risk_model.RankingRisk):
    """A random risk per host: a uniformly random feasible destination.

    :param rng: a ``numpy.random.Generator``
    """

    def __init__(self, metadata, rng):
        super().__init__(metadata)
        self.rng = rng

    def predict_risk(self, windows):
        return self.rng.random(len(windows.names))
