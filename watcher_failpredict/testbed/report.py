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

"""QoS figures of testbed runs: the table, JSON, and the paper's plots.

Response-time statistics weight each sampled request by the requests it
stands for (a chain-step's completed requests shared among its samples
that finished within the timeout), so a busy chain counts more than an
idle one, as a load generator's log would.
"""

import json
import math

import numpy as np

from watcher_failpredict import atomic

METRICS = ('throughput', 'mean_rt', 'p50', 'p99', 'p100', 'timeouts',
           'migrations', 'failure_server_s')
LABELS = {'throughput': 'req/s', 'mean_rt': 'mean RT ms', 'p50': 'p50 ms',
          'p99': 'p99 ms', 'p100': 'p100 ms', 'timeouts': 'timeouts',
          'migrations': 'migr', 'failure_server_s': 'fail srv-s'}


def weighted_quantiles(values, weights, qs):
    """Quantiles ``qs`` (0-1) of ``values`` weighted by ``weights``."""
    values = np.asarray(values, float).ravel()
    weights = np.asarray(weights, float).ravel()
    ok = ~np.isnan(values) & (weights > 0)
    values, weights = values[ok], weights[ok]
    if not values.size:
        return [math.nan for _ in qs]
    order = np.argsort(values)
    values, cum = values[order], np.cumsum(weights[order])
    cum /= cum[-1]
    return [float(values[-1]) if q >= 1 else
            float(values[np.searchsorted(cum, q)]) for q in qs]


def sample_weights(tb):
    k = tb.k
    samples = tb.rec_samples[:k]
    valid = (~np.isnan(samples)).sum(axis=2)
    per = np.where(valid > 0, tb.rec_completed[:k] / np.maximum(valid, 1), 0)
    return samples, np.broadcast_to(per[..., None], samples.shape)


def summarize(tb):
    """The QoS figures of one finished run (times in ms)."""
    scn = tb.scn
    k = tb.k
    duration = k * tb.dt
    samples, weights = sample_weights(tb)
    ok = ~np.isnan(samples)
    mean_rt = float(np.sum(np.where(ok, samples, 0) * weights) /
                    max(np.sum(weights[ok]), 1e-12))
    p50, p99, p100 = weighted_quantiles(samples, weights, (0.5, 0.99, 1.0))
    return {
        'throughput': float(tb.rec_completed[:k].sum() / duration),
        'mean_rt': 1000 * mean_rt, 'p50': 1000 * p50, 'p99': 1000 * p99,
        'p100': 1000 * p100,
        'timeouts': float(tb.rec_timeouts[:k].sum()),
        'migrations': len(tb.migrations),
        'failure_server_s': tb.failure_seconds(
            scn['trigger']['threshold'], scn['trigger']['period']),
    }


def _ci95(values):
    values = np.asarray(values, float)
    if values.size < 2:
        return 0.0
    from scipy import stats
    return float(stats.t.ppf(0.975, values.size - 1) * values.std(ddof=1)
                 / math.sqrt(values.size))


def aggregate(per_seed):
    """``{policy: [summary per seed]}`` -> means, 95 % CIs and gains.

    Gains are over ``no-mig``: throughput ``(x - x0) / x0``, response time
    ``(r0 - r) / r0``; ``oracle_share`` is a gain over the oracle's.
    """
    out = {}
    for name, runs in per_seed.items():
        out[name] = {m: {'mean': float(np.mean([r[m] for r in runs])),
                         'ci95': _ci95([r[m] for r in runs])}
                     for m in METRICS}
    base = out.get('no-mig')
    if base:
        x0, r0 = base['throughput']['mean'], base['mean_rt']['mean']
        for name, res in out.items():
            res['gain_throughput'] = (res['throughput']['mean'] - x0) / x0
            res['gain_rt'] = (r0 - res['mean_rt']['mean']) / r0
        oracle = out.get('oracle')
        for name, res in out.items():
            for g in ('gain_throughput', 'gain_rt'):
                og = oracle[g] if oracle else math.nan
                res[g.replace('gain', 'oracle_share')] = (
                    res[g] / og if oracle and og > 0 else math.nan)
    return out


def _fmt(v, ci=None, digits=1):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return '-'
    text = f'{v:.{digits}f}'
    if ci:
        text += f'±{ci:.{digits}f}'
    return text


def table(agg, n_seeds):
    """The terminal table (means; ± 95 % CI when several seeds)."""
    head = ['policy'] + [LABELS[m] for m in METRICS] + [
        'gain thr', 'gain RT', 'of oracle thr', 'of oracle RT']
    rows = []
    for name, res in agg.items():
        row = [name]
        for m in METRICS:
            d = 0 if m in ('timeouts', 'migrations', 'failure_server_s') \
                else 1
            row.append(_fmt(res[m]['mean'], res[m]['ci95'] if n_seeds > 1
                            else None, d))
        for g in ('gain_throughput', 'gain_rt'):
            row.append(_fmt(100 * res.get(g, math.nan)) + ' %')
        for g in ('oracle_share_throughput', 'oracle_share_rt'):
            row.append(_fmt(100 * res.get(g, math.nan), digits=0) + ' %')
        rows.append(row)
    widths = [max(len(str(r[i])) for r in rows + [head])
              for i in range(len(head))]
    lines = ['  '.join(h.rjust(w) if i else h.ljust(w)
                       for i, (h, w) in enumerate(zip(head, widths)))]
    lines.append('  '.join('-' * w for w in widths))
    for r in rows:
        lines.append('  '.join(c.rjust(w) if i else c.ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths))))
    return '\n'.join(lines)


def write_json(path, scn, agg, per_seed, evaluations, stretch='test'):
    """The results as JSON; ``stretch`` says which stretch the policies
    ran on ('test', or 'validation' for the development protocol), so a
    validation file cannot be mistaken for a result. Written atomically:
    an interrupted run leaves the previous file, not half a JSON
    document.
    """
    doc = {'scenario': scn, 'stretch': stretch, 'results': agg,
           'per_seed': per_seed, 'model_evaluations': evaluations}
    with atomic.atomic_open(path, 'w') as f:
        json.dump(doc, f, indent=2, default=str)


def plot(runs, out_dir, scenario_name):
    """PNGs like the paper's figures from one seed's runs.

    :param runs: {policy: testbed} of one seed
    :returns: the file paths written
    """
    import os

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    paths = []

    def save(fig, name):
        path = os.path.join(out_dir, f'{scenario_name}-{name}.png')
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)

    win = 12   # one-minute moving average at 5 s steps
    fig, axes = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for name, tb in runs.items():
        t = tb.t[:tb.k] / 60.0
        thr = tb.rec_completed[:tb.k].sum(axis=1) / tb.dt
        samples, weights = sample_weights(tb)
        ok = ~np.isnan(samples)
        num = np.sum(np.where(ok, samples, 0) * weights, axis=(1, 2))
        den = np.sum(np.where(ok, weights, 0), axis=(1, 2))
        rt = 1000 * num / np.maximum(den, 1e-12)
        kern = np.ones(win) / win
        axes[0].plot(t, np.convolve(thr, kern, 'same'), label=name, lw=1)
        axes[1].plot(t, np.convolve(rt, kern, 'same'), label=name, lw=1)
    axes[0].set_ylabel('throughput (req/s)')
    axes[1].set_ylabel('mean response time (ms)')
    axes[1].set_xlabel('minutes into the test stretch')
    axes[0].legend(ncol=5, fontsize=8)
    save(fig, 'throughput-response-time')

    fig, ax = plt.subplots(figsize=(8, 4.5))
    names = list(runs)
    width = 0.8 / 3
    for i, q in enumerate(('p50', 'p99', 'p100')):
        vals = [summarize(runs[n])[q] for n in names]
        ax.bar(np.arange(len(names)) + (i - 1) * width, vals, width,
               label=q)
    ax.set_xticks(np.arange(len(names)), names)
    ax.set_yscale('log')
    ax.set_ylabel('response time (ms)')
    ax.legend()
    save(fig, 'percentiles')

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, tb in runs.items():
        samples, weights = sample_weights(tb)
        ok = ~np.isnan(samples)
        v, w = samples[ok], weights[ok]
        order = np.argsort(v)
        cdf = np.cumsum(w[order])
        ax.plot(1000 * v[order], cdf / cdf[-1], label=name, lw=1)
    ax.set_xscale('log')
    ax.set_xlabel('response time (ms)')
    ax.set_ylabel('share of completed requests')
    ax.legend()
    save(fig, 'response-time-cdf')

    fig, axes = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for name, tb in runs.items():
        if not tb.migrations:
            continue
        offs = np.arange(-30, 121, int(tb.dt))
        to_acc, rt_acc = np.zeros(offs.size), np.zeros(offs.size)
        n = 0
        samples, weights = sample_weights(tb)
        for m in tb.migrations:
            c = m.vnf // tb.n_hops
            ks = (m.start + offs) / tb.dt
            ks = ks.astype(int)
            if ks[0] < 0 or ks[-1] >= tb.k:
                continue
            to_acc += tb.rec_timeouts[ks, c]
            s, w = samples[ks, c], weights[ks, c]
            ok = ~np.isnan(s)
            rt_acc += 1000 * np.sum(np.where(ok, s * w, 0), 1) / np.maximum(
                np.sum(np.where(ok, w, 0), 1), 1e-12)
            n += 1
        if n:
            axes[0].plot(offs, to_acc / n, label=name, lw=1)
            axes[1].plot(offs, rt_acc / n, label=name, lw=1)
    axes[0].set_ylabel('timeouts per step (moved chain)')
    axes[1].set_ylabel('mean RT of moved chain (ms)')
    axes[1].set_xlabel('seconds since the migration request')
    axes[0].legend(fontsize=8)
    save(fig, 'since-migration')
    return paths
