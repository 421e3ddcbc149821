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

"""Decision thresholds on failure probabilities, from migration costs.

A false migration (moving a VNF off a host that would not have failed)
costs a short switch-over outage; a missed failure costs a saturated VNF
chain. Both risk models (models.CalibratedRiskClassifier and
peak_risk.PeakRiskClassifier) pick their alarm threshold with these rules.
"""

import numpy as np

#: Default costs: a missed failure (a saturated VNF chain) is taken as five
#: times as bad as a needless live migration (a short switch-over outage).
DEFAULT_COST_FALSE_MIGRATION = 1.0
DEFAULT_COST_MISSED_FAILURE = 5.0


def bayes_threshold(cost_fp, cost_fn):
    """Decision threshold on a *calibrated* probability minimising cost.

    Migrating costs cost_fp when the host would not have failed; not
    migrating costs cost_fn when it would. Migrate when
    ``p * cost_fn >= (1 - p) * cost_fp``, i.e. ``p >= cost_fp / (cost_fp
    + cost_fn)``.
    """
    cost_fp, cost_fn = float(cost_fp), float(cost_fn)
    if cost_fp <= 0 or cost_fn <= 0:
        raise ValueError(f'costs must be positive, got false migration '
                         f'{cost_fp:g}, missed failure {cost_fn:g}')
    return cost_fp / (cost_fp + cost_fn)


def cost_threshold(proba, y, cost_fp, cost_fn):
    """Threshold minimising ``cost_fp * FP + cost_fn * FN`` on (proba, y).

    Candidates are the observed probabilities (plus 1.0 + eps, "never
    alarm"); ties go to the highest threshold (fewer migrations). Falls
    back to :func:`bayes_threshold` when y has a single class. Use it on
    training (calibration) data only, never on the test stretch.
    """
    proba = np.asarray(proba, dtype=float)
    y = np.asarray(y, dtype=int)
    if proba.shape != y.shape:
        raise ValueError(f'proba {proba.shape} and y {y.shape} differ')
    if np.unique(y).size < 2:
        return bayes_threshold(cost_fp, cost_fn)
    order = np.argsort(-proba, kind='stable')
    p, t = proba[order], y[order]
    # alarm on the first i samples (highest proba): FP = i - tp, FN = P - tp
    tp = np.concatenate([[0], np.cumsum(t)])
    i = np.arange(p.size + 1)
    cost = cost_fp * (i - tp) + cost_fn * (t.sum() - tp)
    # only cut between distinct values
    valid = np.concatenate([[True], np.r_[p[1:] != p[:-1], True]])
    cost = np.where(valid, cost, np.inf)
    best = int(np.argmin(cost))     # first minimum = fewest alarms
    if best == 0:
        return float(min(1.0, p[0] + 1e-9)) if p.size else 1.0
    return float(p[best - 1])
