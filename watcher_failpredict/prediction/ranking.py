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

"""The destination ranking rule, shared by the strategy and the evaluation.

A failure classifier answers "will this host be in failure state within
the horizon?". Among the feasible destinations of a VNF that question is
usually settled: most of them are nowhere near the line and their
predicted risks are all ~0. Ranking by risk alone then ranks by noise in
the third decimal, and the old rule (ties broken by the CPU now) fell back
to exactly the least-CPU-now policy the model is meant to beat. A model
bundle may therefore carry a peak regressor (:class:`peak_risk.PeakRegressor`)
that predicts how close each host will come to the line (the future peak of
its trigger-period mean CPU), and the rule is:

1. **Risk first, when it is material.** Candidates whose predicted risk
   exceeds the lowest one by ``risk_tolerance`` or more rank behind the
   others: a host the model expects to fail is never preferred for its
   peak. Risks are bucketed relative to the lowest risk, in steps of
   ``risk_tolerance`` (bucket ``floor((risk - min risk) / tolerance)``), so
   the hosts within one tolerance of the safest one form the first bucket
   whatever their absolute values (no arbitrary rounding boundary at 0.005
   between two hosts that are equally safe).
2. **Then the predicted peak with the VNF's load added**, lowest first.
3. Then the risk itself, then the name (a reproducible plan).

``RISK_TOLERANCE`` = 0.01, chosen a priori, not tuned: one expected failure
per hundred decisions is below what the calibrated models resolve (their
calibration maps are fitted on a slice with tens to hundreds of failures,
so differences under a percentage point are within their noise), while a
difference of several points is the signal the classifier exists for.

Without a peak regressor (bundles trained before it existed, the testbed's
ranking objects) the rule is the historical one: lowest risk, ties by the
lower CPU now, then the name.
"""

import math

import numpy as np

#: Risks within this of the lowest candidate's are "equally safe" and the
#: predicted peak decides among them. A priori choice (see module doc).
RISK_TOLERANCE = 0.01


def _num(values, n, default):
    if values is None:
        return np.full(n, default, dtype=float)
    arr = np.asarray(values, dtype=float).reshape(-1)
    if arr.size != n:
        raise ValueError(f'expected {n} values, got {arr.size}')
    return arr


def order(risks, peaks=None, cpu_now=None, names=None,
          risk_tolerance=RISK_TOLERANCE):
    """Candidate indices from best to worst destination.

    :param risks: predicted failure probability per candidate (lower is
        safer); candidates with NaN risk are dropped
    :param peaks: predicted future peak CPU per candidate with the VNF's
        load added, or None when the model has no peak regressor (then the
        historical rule applies: risk, CPU now, name); NaN peaks rank last
        within their risk bucket
    :param cpu_now: current CPU per candidate (only the historical rule
        uses it)
    :param names: tie-break of last resort (default: the index)
    :param risk_tolerance: bucket width on the risk (> 0)
    :returns: list of int indices into the inputs
    """
    risks = np.asarray(risks, dtype=float).reshape(-1)
    n = risks.size
    if not risk_tolerance > 0:
        raise ValueError(f'risk_tolerance must be > 0, got '
                         f'{risk_tolerance!r}')
    names = list(range(n)) if names is None else list(names)
    if len(names) != n:
        raise ValueError(f'expected {n} names, got {len(names)}')
    ok = [i for i in range(n) if not math.isnan(risks[i])]
    if not ok:
        return []
    if peaks is None:
        cpu = _num(cpu_now, n, math.inf)
        cpu = np.where(np.isnan(cpu), math.inf, cpu)
        return sorted(ok, key=lambda i: (risks[i], cpu[i], names[i]))
    peaks = _num(peaks, n, math.nan)
    peaks = np.where(np.isnan(peaks), math.inf, peaks)
    low = min(risks[i] for i in ok)
    bucket = {i: math.floor((risks[i] - low) / risk_tolerance + 1e-9)
              for i in ok}
    return sorted(ok, key=lambda i: (bucket[i], peaks[i], risks[i],
                                     names[i]))


def best(risks, peaks=None, cpu_now=None, names=None,
         risk_tolerance=RISK_TOLERANCE):
    """Index of the best destination (see :func:`order`), or None."""
    ranked = order(risks, peaks, cpu_now, names, risk_tolerance)
    return ranked[0] if ranked else None
