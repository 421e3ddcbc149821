#!/usr/bin/env python
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

"""Training and scoring at scale: 100 hosts x 7 days at 1 minute.

About 1 M host-samples of the synthetic periodic workload. Prints, per
model kind, the end-to-end training time (features, fit, held-out
evaluation: what `watcher-failpredict train` does) with the peak memory
allocated during it (tracemalloc) and the time to score 1,000 hosts
(bundle.predict_risk, median of 20). Beside them: a full RBF SVC (no
subsample) on growing subsamples of the same data, and its fit time
extrapolated to the full set with the measured growth exponent.

    .venv/bin/python bench/training_scale.py
    .venv/bin/python bench/training_scale.py --hosts 20 --days 2   # quick
"""

import argparse
import resource
import sys
import time
import tracemalloc

import numpy as np
from sklearn import svm as sk_svm

from watcher_failpredict.prediction import pipeline
from watcher_failpredict.prediction import traces
from watcher_failpredict.prediction import training

TARGET_TRAIN_S = 120.0
TARGET_SCORE_MS = 50.0


def _score_time(bundle, n_hosts, step, window_steps, runs=20):
    w = traces.synthetic_periodic(n_hosts=n_hosts,
                                  days=(window_steps + 2) * step / 86400.0,
                                  step=step, seed=7)
    bundle.predict_risk(w)                  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        risk = bundle.predict_risk(w)
        times.append(time.perf_counter() - t0)
    assert risk.shape == (n_hosts,)
    return 1000 * float(np.median(times))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--hosts', type=int, default=100)
    ap.add_argument('--days', type=float, default=7)
    ap.add_argument('--kinds', default='gbt_peak,gbt,svm,svm_nystroem')
    ap.add_argument('--svc-sizes', default='2000,4000,8000')
    args = ap.parse_args(argv)
    step, period, horizon, window = 60, 300, 600, 1800
    w = traces.synthetic_periodic(n_hosts=args.hosts, days=args.days,
                                  step=step, cycle=3600)
    n = args.hosts * len(w.times)
    print(f'data: {args.hosts} hosts x {len(w.times)} steps of {step} s = '
          f'{n:,} host-samples (train 75 %, test 25 %)')
    rows = []
    bundles = {}
    for kind in [k for k in args.kinds.split(',') if k]:
        sys.stderr.write(f'training {kind}...\n')
        tracemalloc.start()
        t0 = time.perf_counter()
        b, ev = training.train(w, threshold=90, period=period,
                               horizon=horizon, window=window,
                               model_kind=kind, cycle=3600)
        dt = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        bundles[kind] = b
        ms = _score_time(b, 1000, step, window // step)
        rows.append((kind, ev['n_train'], dt, peak, ms,
                     ev['model']['pr_auc']))
    print(f'{"model":14} {"train rows":>10} {"train s":>8} '
          f'{"peak MiB":>9} {"score 1000 hosts ms":>20} {"PR-AUC":>7}')
    for kind, ntr, dt, peak, ms, pr in rows:
        flag_t = 'ok' if dt <= TARGET_TRAIN_S else 'OVER'
        flag_s = 'ok' if ms <= TARGET_SCORE_MS else 'OVER'
        print(f'{kind:14} {ntr:>10,} {dt:>6.1f}{flag_t:>4} {peak:>7.0f}  '
              f'{ms:>16.1f} {flag_s:>3} {pr:>7.3f}')
    print(f'targets: train <= {TARGET_TRAIN_S:.0f} s, score 1,000 hosts <= '
          f'{TARGET_SCORE_MS:.0f} ms')

    # full SVC (what the paper's SVM costs without subsampling)
    X, y, t_idx, _ = pipeline.make_dataset(
        w, window // step, period // step, horizon // step, 90)
    X = np.nan_to_num(X[:, :14])
    X = (X - X.mean(0)) / (X.std(0) + 1e-9)
    rng = np.random.RandomState(0)
    sizes, fits = [], []
    print('\nfull RBF SVC (sklearn.svm.SVC, probability via 5-fold Platt '
          'not included), same features:')
    for m in [int(s) for s in args.svc_sizes.split(',')]:
        idx = rng.choice(len(y), m, replace=False)
        t0 = time.perf_counter()
        sk_svm.SVC(kernel='rbf', class_weight='balanced').fit(X[idx], y[idx])
        dt = time.perf_counter() - t0
        sizes.append(m)
        fits.append(dt)
        print(f'  {m:>7,} samples: {dt:7.2f} s')
    slope = np.polyfit(np.log(sizes), np.log(fits), 1)[0]
    full = fits[-1] * (len(y) * 0.75 / sizes[-1]) ** slope
    print(f'  growth exponent {slope:.2f}; extrapolated to '
          f'{int(len(y) * 0.75):,} training samples: {full / 3600:.1f} h '
          f'(x6 with probability=True)')
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f'process peak RSS {rss:.0f} MiB')
    return 0


if __name__ == '__main__':
    sys.exit(main())
