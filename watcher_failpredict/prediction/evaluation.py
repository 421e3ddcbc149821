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

"""Evaluation report: every model and every baseline on the same split.

One time-ordered split (train on the earlier stretch, test on the later one,
with a gap of window + horizon between them, see
:func:`pipeline.split_times`); never shuffled. Every method scores exactly
the same test samples (host, decision time). Nothing is tuned on the test
stretch: models fit, calibrate and pick their thresholds on the training
stretch; baselines fit their probability map (:class:`baselines.
ScoreCalibrator`) there too.

Metrics per method:

* PR-AUC (average precision) and ROC-AUC of "failure within the horizon";
* Brier score and a calibration curve (reliability);
* precision and recall at the method's decision threshold (the cost-based
  one: ``cost_fp / (cost_fp + cost_fn)`` on calibrated probabilities, or
  the gbt / gbt_peak model's own threshold chosen on its calibration
  slice);
* lead time: for each entry into failure in the test stretch, how long
  before it the risk first crossed the threshold (within the horizon);
* destination regret: at every test time when some host is in failure
  state, each method picks the feasible host (not failing) it rates
  safest; regret = realised future peak (trigger-period mean CPU within
  the horizon) of that host minus that of the best feasible host. Models
  pick with the strategy's own rule (:mod:`ranking`: risk to within
  ``RISK_TOLERANCE`` of the safest, then the peak regressor's prediction;
  without a regressor, risk then CPU now); baselines pick the lowest
  score of their own.

The verdict judges a *chosen* model (the first model kind asked for),
named before the test stretch is scored, against the best baseline; the
best model on the test stretch is shown beside it, not judged.

Outputs: a terminal table (:func:`format_report`), JSON
(:func:`write_json`) and PNG plots (:func:`write_plots`, matplotlib Agg).
"""

import json
import os
import time

import numpy as np
from sklearn import calibration as sk_cal
from sklearn import metrics as skm

from watcher_failpredict import atomic
from watcher_failpredict.prediction import baselines
from watcher_failpredict.prediction import feature_sets
from watcher_failpredict.prediction import labels as lab
from watcher_failpredict.prediction import models
from watcher_failpredict.prediction import pipeline
from watcher_failpredict.prediction import ranking

DEFAULT_MODELS = ('gbt_peak', 'gbt', 'svm')


def binary_metrics(y, proba, threshold):
    """PR-AUC, ROC-AUC, Brier, precision and recall at threshold."""
    y = np.asarray(y, dtype=int)
    proba = np.asarray(proba, dtype=float)
    pred = proba >= threshold
    out = {'pr_auc': None, 'roc_auc': None,
           'brier': float(skm.brier_score_loss(y, proba)) if y.size else None,
           'precision': float(skm.precision_score(y, pred, zero_division=0)),
           'recall': float(skm.recall_score(y, pred, zero_division=0)),
           'threshold': float(threshold),
           'alarm_rate': float(np.mean(pred)) if y.size else None}
    if np.unique(y).size == 2:
        out['pr_auc'] = float(skm.average_precision_score(y, proba))
        out['roc_auc'] = float(skm.roc_auc_score(y, proba))
    return out


def calibration_points(y, proba, n_bins=10):
    """(mean predicted, observed frequency) per quantile bin."""
    if np.unique(y).size < 2:
        return {'predicted': [], 'observed': []}
    obs, pred = sk_cal.calibration_curve(y, proba, n_bins=n_bins,
                                         strategy='quantile')
    return {'predicted': pred.tolist(), 'observed': obs.tolist()}


def lead_times(state, risk_grid, alarm, test_start, horizon_steps, step):
    """Lead times of alarms before entries into failure.

    :param state: bool (n_hosts, n_steps) failure state per column
    :param risk_grid: float (n_hosts, n_steps) risk at decision time t
        (NaN where not scored)
    :param alarm: threshold on the risk
    :returns: dict with onsets, caught (alarm in the horizon before the
        onset), median and mean lead in seconds over caught onsets
    """
    n_hosts, n_steps = state.shape
    leads, onsets = [], 0
    for hh in range(n_hosts):
        s_all = np.flatnonzero(state[hh, 1:] & ~state[hh, :-1]) + 1
        for s in s_all:
            lo = s - horizon_steps + 1
            if lo < test_start:
                continue
            ts = np.arange(lo, s + 1)
            r = risk_grid[hh, ts]
            if np.isnan(r).all():
                continue
            onsets += 1
            hit = np.flatnonzero(r >= alarm)
            if hit.size:
                leads.append((s + 1 - ts[hit[0]]) * step)
    return {'onsets': onsets, 'caught': len(leads),
            'caught_rate': (len(leads) / onsets) if onsets else None,
            'median_lead_s': float(np.median(leads)) if leads else None,
            'mean_lead_s': float(np.mean(leads)) if leads else None}


def destination_regret(risk_grid, peak, failing, times, pred_peak=None,
                       cpu_now=None, risk_tolerance=ranking.RISK_TOLERANCE):
    """Mean regret of the destination each decision at ``times`` picks.

    The pick is :func:`ranking.best` over the feasible hosts, the rule the
    strategy applies: with ``pred_peak`` (a model's peak regressor),
    lowest risk to within ``risk_tolerance``, then lowest predicted peak;
    without it, lowest ``risk_grid`` score, ties by ``cpu_now``.

    :param risk_grid: (n_hosts, n_steps) score, lower = safer destination
    :param peak: (n_hosts, n_steps) realised future peak at decision t
    :param failing: (n_hosts, n_steps) bool, host in failure state at t
        (not a feasible destination)
    :param pred_peak: (n_hosts, n_steps) predicted peak, or None
    :param cpu_now: (n_hosts, n_steps) CPU now (tie-break), or None
    :returns: dict mean regret (CPU points), destination failure rate is
        left to the caller; None when no decision was possible
    """
    regrets, picks_peak = [], []
    for t in times:
        ok = ~failing[:, t] & ~np.isnan(risk_grid[:, t]) & \
            ~np.isnan(peak[:, t])
        if ok.sum() < 2:
            continue
        cand = np.flatnonzero(ok)
        chosen = cand[ranking.best(
            risk_grid[cand, t],
            None if pred_peak is None else pred_peak[cand, t],
            None if cpu_now is None else cpu_now[cand, t],
            risk_tolerance=risk_tolerance)]
        regrets.append(peak[chosen, t] - peak[cand, t].min())
        picks_peak.append(peak[chosen, t])
    if not regrets:
        return {'decisions': 0, 'mean_regret': None,
                'mean_chosen_peak': None}
    return {'decisions': len(regrets),
            'mean_regret': float(np.mean(regrets)),
            'mean_chosen_peak': float(np.mean(picks_peak))}


def _grid(shape, h_idx, t_idx, values):
    g = np.full(shape, np.nan)
    g[h_idx, t_idx] = values
    return g


def evaluate(windows, threshold=90.0, period=300, horizon=300, window=600,
             model_kinds=DEFAULT_MODELS, test_fraction=0.25, cycle=None,
             cost_fp=models.DEFAULT_COST_FALSE_MIGRATION,
             cost_fn=models.DEFAULT_COST_MISSED_FAILURE, k=2.0,
             exclude_intervals=None, random_state=0,
             max_samples=models.DEFAULT_MAX_SAMPLES, bundle=None,
             name='', progress=None, peak_model=True):
    """Evaluate models and baselines on one time-ordered split.

    :param model_kinds: risk model kinds to train on the training stretch
        (subset of models.RISK_KINDS); 'fixed_hosts' is evaluated on
        destination regret only. The first risk kind is the chosen model
        the verdict judges (the bundle, when one is given)
    :param bundle: an existing ModelBundle to score on the test stretch as
        method 'bundle' (its training span should precede the test stretch;
        the report says if not)
    :param peak_model: fit a peak regressor beside each risk model (as
        training does) and rank destinations with it
    :returns: dict (JSON-serialisable apart from '_arrays', used for plots)
    """
    def note(msg):
        if progress:
            progress(msg)

    step = int(windows.step)
    steps = pipeline.to_steps(step, window, period, horizon)
    w, p, h = steps
    cycle_steps = int(round(cycle / step)) if cycle else None
    if cycle_steps is not None and cycle_steps < h:
        cycle_steps = None
    cpu = np.asarray(windows.data['cpu'], dtype=float)
    n_hosts, n_steps = cpu.shape
    train_end, test_start = pipeline.split_times(n_steps, w, h,
                                                 test_fraction)
    # one sample matrix for every method: the widest feature set asked
    # for (each set's columns start with the narrower sets')
    wanted = {models.FEATURE_SET.get(k, 'v1') for k in model_kinds}
    if bundle is not None:
        wanted.add(bundle.metadata.get('feature_set', 'v1'))
    fs = max(wanted, key=feature_sets.FEATURE_SETS.index)
    if bundle is not None and bundle.metadata.get('feature_params'):
        fparams = bundle.metadata['feature_params']
    else:
        fparams = pipeline.feature_params(fs, windows, steps, cycle)
    note('features')
    samples = pipeline.risk_samples(
        windows, steps, threshold, fs, fparams,
        exclude_intervals=exclude_intervals, time_order=True)
    X, y, t_idx, h_idx, n_excluded = samples

    def columns_of(feature_set):
        """X's columns of a narrower feature set."""
        return X[:, :len(feature_sets.feature_names(
            feature_set, fparams if feature_set != 'v1' else None))]
    tr = t_idx <= train_end
    te = t_idx >= test_start
    if y[tr].sum() == 0 or y[te].sum() == 0:
        raise ValueError(
            f'{name or "data"}: no failure samples in the '
            f'{"training" if y[tr].sum() == 0 else "test"} stretch at '
            f'threshold {threshold:g} %; lower the threshold')

    state = lab.failure_state(cpu, threshold, p)
    peak_all = lab.future_peak(lab.rolling_mean(cpu, p), h)
    peak = np.full(cpu.shape, np.nan)
    peak[:, 1:] = peak_all[:, :-1]   # decision t: peak of columns t..t+h-1
    failing = np.zeros(cpu.shape, dtype=bool)
    failing[:, 1:] = state[:, :-1]   # failing at decision t: state at t-1
    test_times = np.unique(t_idx[te])
    trigger_times = test_times[failing[:, test_times].any(axis=0)]
    if trigger_times.size == 0:
        trigger_times = test_times

    shape = cpu.shape
    methods = {}
    # models rank destinations with the strategy's rule (ranking.best):
    # risk to within RISK_TOLERANCE, then their predicted peak; a model
    # without a peak regressor ties on the CPU now
    cpu_now = _grid(shape, h_idx[te], t_idx[te], baselines.least_cpu_now(
        cpu, t_idx[te], h_idx[te], w))
    target = peak[h_idx, t_idx]      # the regressor's target per sample
    arrays = {}

    def add(mname, kind, p_test, thr, score_for_rank, extra=None,
            pred_peak=None):
        m = binary_metrics(y[te], p_test, thr)
        m['kind'] = kind
        m['calibration'] = calibration_points(y[te], p_test)
        grid = _grid(shape, h_idx[te], t_idx[te], p_test)
        m['lead'] = lead_times(state, grid, thr, test_start, h, step)
        rank = _grid(shape, h_idx[te], t_idx[te], score_for_rank)
        if pred_peak is not None:
            pred_peak = _grid(shape, h_idx[te], t_idx[te], pred_peak)
            known = ~np.isnan(target[te])
            m['peak_mae'] = float(np.mean(np.abs(
                pred_peak[h_idx[te], t_idx[te]][known] - target[te][known])))
        m['destination'] = destination_regret(
            rank, peak, failing, trigger_times, pred_peak,
            None if kind == 'baseline' else cpu_now)
        if extra:
            m.update(extra)
        methods[mname] = m
        arrays[mname] = p_test

    # baselines
    for b in baselines.BASELINES:
        if b == 'seasonal_naive' and not cycle_steps:
            continue
        note(f'baseline {b}')
        s = baselines.score(b, cpu, t_idx, h_idx, w, p, h, cycle_steps, k)
        cal = baselines.ScoreCalibrator().fit(s[tr], y[tr])
        p_test = cal.predict_proba(s[te])[:, 1]
        s_te = np.where(np.isnan(s[te]), np.inf, s[te])
        add(b, 'baseline', p_test, models.bayes_threshold(cost_fp, cost_fn),
            s_te)

    # models
    for kind in model_kinds:
        if kind == 'fixed_hosts':
            continue
        if kind not in models.RISK_KINDS:
            raise ValueError(f'unknown model kind {kind!r}; known: '
                             f'{models.MODEL_KINDS}')
        note(f'model {kind}')
        Xk = columns_of(models.FEATURE_SET[kind])
        t0 = time.monotonic()
        X_fit, y_fit, fit_rows = pipeline.training_rows(
            models.FEATURE_SET[kind], windows, steps, threshold, fparams,
            samples._replace(X=Xk), tr,
            exclude_intervals=exclude_intervals, random_state=random_state)
        try:
            model = pipeline.fit_risk_model(
                kind, X_fit, y_fit, target[fit_rows], threshold, fparams,
                random_state, max_samples, cost_fp, cost_fn)
        except ValueError as exc:   # e.g. too few failures for its CV
            methods[kind] = {'kind': 'model', 'error': str(exc),
                             'pr_auc': None}
            continue
        fit_s = time.monotonic() - t0
        pred_peak = None
        if peak_model:
            t0 = time.monotonic()
            reg = pipeline.fit_peak_model(X_fit, target[fit_rows],
                                          random_state)
            pred_peak = reg.predict(Xk[te])
            fit_s += time.monotonic() - t0
        p_test = model.predict_proba(Xk[te])[:, 1]
        thr = getattr(model, 'threshold_', None)
        if thr is None:
            thr = models.bayes_threshold(cost_fp, cost_fn)
        add(kind, 'model', p_test, thr, p_test, {'fit_seconds': fit_s},
            pred_peak)

    if bundle is not None:
        note('bundle')
        md = bundle.metadata
        Xb = columns_of(md.get('feature_set', 'v1'))
        p_test = bundle.model.predict_proba(Xb[te])[:, 1]
        thr = md.get('decision_threshold') or models.bayes_threshold(
            cost_fp, cost_fn)
        span = md.get('training_span') or [None, None]
        pm = bundle.peak_model
        add('bundle', f'bundle ({md.get("model_kind")})', p_test, thr,
            p_test, {'bundle_training_span': span},
            None if pm is None else pm.predict(Xb[te]))

    if 'fixed_hosts' in model_kinds:
        note('model fixed_hosts')
        methods['fixed_hosts'] = _fixed_hosts(
            windows, steps, train_end, test_start, peak, failing,
            trigger_times, random_state, max_samples)

    times = np.asarray(windows.times, dtype=float)
    result = {
        'name': name,
        'config': {'threshold': threshold, 'period': p * step,
                   'horizon': h * step, 'window': w * step,
                   'granularity': step, 'cycle': cycle,
                   'cost_false_migration': cost_fp,
                   'cost_missed_failure': cost_fn, 'k': k,
                   'test_fraction': test_fraction},
        'hosts': len(windows.names),
        'train_span': [float(times[0]), float(times[train_end - 1] + step)],
        'test_span': [float(times[test_start - w]),
                      float(times[-1] + step)],
        'n_train': int(tr.sum()), 'n_test': int(te.sum()),
        'positive_rate_train': float(y[tr].mean()),
        'positive_rate_test': float(y[te].mean()),
        'excluded_contaminated': n_excluded,
        'destination_decisions': int(trigger_times.size),
        'methods': methods,
    }
    chosen = next((k for k in model_kinds if k in models.RISK_KINDS),
                  None)
    result['verdict'] = verdict(methods, 'bundle' if bundle is not None
                                else chosen)
    result['_arrays'] = {'y': y[te], 'scores': arrays, 't': t_idx[te],
                         'h': h_idx[te], 'cpu': cpu, 'times': times,
                         'names': windows.names, 'threshold': threshold}
    return result


def _fixed_hosts(windows, steps, train_end, test_start, peak, failing,
                 trigger_times, random_state, max_samples):
    """The paper's which-server classifier: destination regret only."""
    X, y, t_idx = pipeline.destination_samples(windows, steps)
    tr, te = t_idx <= train_end, t_idx >= test_start
    out = {'kind': 'model (which server)', 'pr_auc': None, 'roc_auc': None,
           'brier': None, 'precision': None, 'recall': None,
           'lead': None}
    if not tr.any() or not te.any():
        out['destination'] = {'decisions': 0, 'mean_regret': None,
                              'mean_chosen_peak': None}
        return out
    try:
        model = pipeline.fit_destination_model(
            X[tr], y[tr], windows.names, random_state, max_samples)
    except ValueError as exc:      # e.g. a host is best too rarely for CV
        out['destination'] = {'decisions': 0, 'mean_regret': None,
                              'mean_chosen_peak': None}
        out['error'] = str(exc)
        return out
    proba = model.predict_proba(X[te])             # (n, hosts)
    rank = np.full(peak.shape, np.nan)
    rank[:, t_idx[te]] = -proba.T                  # higher p = safer
    keep = np.intersect1d(trigger_times, t_idx[te])
    out['destination'] = destination_regret(rank, peak, failing, keep)
    return out


def verdict(methods, chosen=None):
    """How the chosen model compares with the best baseline.

    :param chosen: the model the verdict is about, named before the test
        stretch is scored (evaluate() passes its first model kind); picking
        the best model *on the test stretch* would select on it. None, or a
        model that could not be fitted: the best model is judged instead
        and the verdict says so (``chosen_fitted`` False).
    """
    def pr(m):
        return methods[m].get('pr_auc') or 0.0

    base = [m for m, v in methods.items() if v.get('kind') == 'baseline']
    mods = [m for m, v in methods.items() if v.get('kind') != 'baseline'
            and v.get('pr_auc') is not None]
    if not base or not mods:
        return {}
    bb, best = max(base, key=pr), max(mods, key=pr)
    judged = chosen if chosen in mods else best
    out = {'best_baseline': bb, 'best_model': best, 'chosen_model': judged,
           'chosen_fitted': chosen is None or chosen in mods,
           'pr_auc_ratio': pr(judged) / pr(bb) if pr(bb) else None,
           'beats_best_baseline': pr(judged) >= pr(bb)}
    lc = methods.get('least_cpu_now', {}).get('destination', {})
    md = methods[judged].get('destination', {})
    if lc.get('mean_regret') is not None and md.get('mean_regret') is not \
            None:
        out['regret_ratio_vs_least_cpu'] = (
            md['mean_regret'] / lc['mean_regret'] if lc['mean_regret']
            else None)
    return out


def _f(v, fmt='.3f'):
    return 'n/a' if v is None else format(v, fmt)


def format_report(result):
    """The main table as text (one row per method)."""
    header = ('method', 'PR-AUC', 'ROC-AUC', 'Brier', 'thr', 'prec',
              'recall', 'caught', 'lead(s)', 'regret')
    rows = []
    for mname, m in result['methods'].items():
        lead = m.get('lead') or {}
        dest = m.get('destination') or {}
        rows.append((mname, _f(m.get('pr_auc')), _f(m.get('roc_auc')),
                     _f(m.get('brier')), _f(m.get('threshold'), '.2f'),
                     _f(m.get('precision'), '.2f'),
                     _f(m.get('recall'), '.2f'),
                     _f(lead.get('caught_rate'), '.2f'),
                     _f(lead.get('median_lead_s'), '.0f'),
                     _f(dest.get('mean_regret'), '.2f')))
    widths = [max(len(str(r[i])) for r in [header] + rows)
              for i in range(len(header))]
    lines = ['  '.join(str(c).ljust(wd) if i == 0 else str(c).rjust(wd)
                       for i, (c, wd) in enumerate(zip(r, widths)))
             for r in [header] + rows]
    lines.insert(1, '  '.join('-' * wd for wd in widths))
    c = result['config']
    head = (f'{result["name"]}: {result["hosts"]} hosts, step '
            f'{c["granularity"]} s, threshold {c["threshold"]:g} %, '
            f'horizon {c["horizon"]} s, window {c["window"]} s; train '
            f'{result["n_train"]} / test {result["n_test"]} samples, '
            f'positive rate test {result["positive_rate_test"]:.3f}; '
            f'{result["destination_decisions"]} destination decisions')
    v = result.get('verdict') or {}
    tail = ''
    if v:
        ratio = v.get('pr_auc_ratio')
        tail = (f'chosen model {v["chosen_model"]} vs best baseline '
                f'{v["best_baseline"]}: PR-AUC ratio {_f(ratio, ".2f")}; ')
        tail += ('it is at least as good as the best baseline' if
                 v['beats_best_baseline'] else
                 'it does NOT match the best baseline')
        if v.get('regret_ratio_vs_least_cpu') is not None:
            tail += (f'; regret vs least-cpu-now '
                     f'{v["regret_ratio_vs_least_cpu"]:.2f}x')
        if not v.get('chosen_fitted', True):
            tail += '; the chosen model could not be fitted'
        if v['best_model'] != v['chosen_model']:
            tail += f' (best model on this test stretch: {v["best_model"]})'
    return '\n'.join([head] + lines + ([tail] if tail else []))


def to_json(result):
    """The result without plot arrays, JSON-serialisable."""
    return {k: v for k, v in result.items() if not k.startswith('_')}


def write_json(result, path):
    """Write the report atomically (watcher_failpredict.atomic)."""
    with atomic.atomic_open(path, 'w') as f:
        json.dump(to_json(result), f, indent=2, sort_keys=True)
    return path


def write_plots(result, directory, n_hosts=3):
    """PR curves, calibration curves and a risk timeline; PNG paths."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt

    os.makedirs(directory, exist_ok=True)
    a = result['_arrays']
    prefix = os.path.join(directory, (result['name'] or 'report')
                          .replace('/', '_'))
    paths = []
    y = a['y']

    fig, ax = plt.subplots(figsize=(6, 5))
    for mname, s in a['scores'].items():
        if np.unique(y).size < 2:
            break
        prec, rec, _ = skm.precision_recall_curve(y, s)
        ap = result['methods'][mname]['pr_auc']
        ax.plot(rec, prec, label=f'{mname} (AP {ap:.2f})',
                lw=2 if result['methods'][mname]['kind'] != 'baseline'
                else 1)
    ax.set_xlabel('recall')
    ax.set_ylabel('precision')
    ax.set_title(f'{result["name"]}: failure within horizon')
    ax.legend(fontsize=7)
    paths.append(prefix + '_pr.png')
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 5))
    ax.plot([0, 1], [0, 1], 'k:', lw=1)
    for mname, m in result['methods'].items():
        c = m.get('calibration') or {}
        if c.get('predicted'):
            ax.plot(c['predicted'], c['observed'], marker='o', ms=3,
                    label=f'{mname} (Brier {m["brier"]:.3f})')
    ax.set_xlabel('predicted probability')
    ax.set_ylabel('observed frequency')
    ax.set_title(f'{result["name"]}: calibration (test stretch)')
    ax.legend(fontsize=7)
    paths.append(prefix + '_calibration.png')
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)

    models_ = [m for m, v in result['methods'].items()
               if v.get('kind') != 'baseline' and m in a['scores']]
    # the timeline shows the model the verdict judges
    best = (result.get('verdict') or {}).get('chosen_model') or \
        (models_[0] if models_ else None)
    if best:
        pos = np.bincount(a['h'][y == 1], minlength=len(a['names']))
        hosts = np.argsort(-pos)[:n_hosts]
        fig, axes = plt.subplots(len(hosts), 1, figsize=(9, 2.4 * len(hosts)),
                                 squeeze=False)
        t0 = a['times'][0]
        step = result['config']['granularity']
        thr = result['methods'][best]['threshold']
        for ax, hh in zip(axes[:, 0], hosts):
            sel = a['h'] == hh
            ts = a['t'][sel]
            hours = (a['times'][ts] - t0) / 3600.0
            ax.plot((a['times'] - t0) / 3600.0, a['cpu'][hh], color='0.6',
                    lw=0.8, label='CPU %')
            ax.axhline(a['threshold'], color='r', ls=':', lw=0.8)
            lo, hi = a['times'][ts.min()] - step * 50, a['times'][ts.max()]
            ax.set_xlim((lo - t0) / 3600.0, (hi - t0) / 3600.0)
            ax.set_ylabel(a['names'][hh], fontsize=7)
            ax2 = ax.twinx()
            ax2.plot(hours, a['scores'][best][sel], color='b', lw=0.8,
                     label=f'risk ({best})')
            ax2.axhline(thr, color='b', ls=':', lw=0.8)
            ax2.set_ylim(0, 1.05)
        axes[0, 0].set_title(f'{result["name"]}: predicted risk ({best}, '
                             'blue) vs real CPU (grey)')
        axes[-1, 0].set_xlabel('hours since start of history')
        paths.append(prefix + '_timeline.png')
        fig.tight_layout()
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    return paths
