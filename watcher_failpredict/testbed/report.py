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

The headline is ``mean_rt_all``: the mean response time over every
request, each one that timed out (late, or abandoned in a queue, e.g.
during a switch-over outage) counted at the client timeout. The paper's
``mean_rt`` averages the completed requests only, so a policy that turns
slow requests into timeouts looks better on it; ``mean_rt_all`` cannot be
gamed that way. ``slo_goodput`` counts the requests answered within the
latency objective (slo_seconds()) per second, and ``slo_miss`` is the
share of all requests that were not.
"""

import json
import math

import numpy as np

from watcher_failpredict import atomic

METRICS = ('mean_rt_all', 'slo_goodput', 'slo_miss', 'throughput',
           'mean_rt', 'p50', 'p99', 'p100', 'timeouts', 'migrations',
           'failure_server_s')
LABELS = {'mean_rt_all': 'RT all ms', 'slo_goodput': 'SLO req/s',
          'slo_miss': 'SLO miss %', 'throughput': 'req/s',
          'mean_rt': 'mean RT ms', 'p50': 'p50 ms', 'p99': 'p99 ms',
          'p100': 'p100 ms', 'timeouts': 'timeouts', 'migrations': 'migr',
          'failure_server_s': 'fail srv-s'}
#: The headline metric: gains over ``no-mig``, the oracle share and the
#: verdicts in the docs use it (lower is better).
HEADLINE = 'mean_rt_all'
#: The latency objective is the chain's mean response time if every hop
#: ran at this utilisation (M/M/1: ``1 / (1 - rho)`` = 5 times its service
#: time), the usual provisioning ceiling of a network function: a request
#: slower than that was delayed by queueing beyond what a correctly
#: sized chain shows.
SLO_UTILISATION = 0.8


def slo_seconds(scn):
    """The latency objective of a scenario's chains (seconds): every
    hop's service time ``cost / vcpus`` divided by ``1 - SLO_UTILISATION``,
    plus the links. ``paper``: 5 x 15 ms + 4 x 0.5 ms = 77 ms.
    """
    ch = scn['chains']
    service = sum(h['cost'] for h in ch['hops']) / float(ch['vcpus'])
    return service / (1.0 - SLO_UTILISATION) + \
        len(ch['hops']) * ch['link_latency']


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
    answered = float(np.sum(weights[ok]))
    answered_time = float(np.sum(np.where(ok, samples, 0) * weights))
    mean_rt = answered_time / max(answered, 1e-12)
    timeouts = float(tb.rec_timeouts[:k].sum())
    timeout = float(scn['chains']['timeout'])
    within = float(np.sum(np.where(ok & (samples <= slo_seconds(scn)),
                                   weights, 0)))
    requests = answered + timeouts
    p50, p99, p100 = weighted_quantiles(samples, weights, (0.5, 0.99, 1.0))
    return {
        'mean_rt_all': 1000 * (answered_time + timeouts * timeout) /
        max(requests, 1e-12),
        'slo_goodput': within / duration,
        'slo_miss': 100.0 * (1.0 - within / requests) if requests else 0.0,
        'throughput': float(tb.rec_completed[:k].sum() / duration),
        'mean_rt': 1000 * mean_rt, 'p50': 1000 * p50, 'p99': 1000 * p99,
        'p100': 1000 * p100,
        'timeouts': timeouts,
        'migrations': len(tb.migrations),
        'failure_server_s': tb.failure_seconds(
            scn['trigger']['threshold'], scn['trigger']['period']),
    }


#: (gain key, metric, lower is better) computed by aggregate()
GAINS = (('gain', HEADLINE, True),
         ('gain_slo_goodput', 'slo_goodput', False),
         ('gain_throughput', 'throughput', False),
         ('gain_rt', 'mean_rt', True))
#: (gain key, its share of the oracle's gain)
SHARES = (('gain', 'oracle_share'),
          ('gain_throughput', 'oracle_share_throughput'),
          ('gain_rt', 'oracle_share_rt'))


def _ci95(values):
    values = np.asarray(values, float)
    if values.size < 2:
        return 0.0
    from scipy import stats
    return float(stats.t.ppf(0.975, values.size - 1) * values.std(ddof=1)
                 / math.sqrt(values.size))


def aggregate(per_seed):
    """``{policy: [summary per seed]}`` -> means, 95 % CIs and gains.

    Gains are over ``no-mig``: ``gain`` is the headline's, ``(r0 - r) /
    r0`` on ``mean_rt_all``; ``gain_slo_goodput`` and ``gain_throughput``
    ``(x - x0) / x0``; ``gain_rt`` the completed requests' mean response
    time (the paper's). ``oracle_share`` (and ``oracle_share_rt``,
    ``oracle_share_throughput``) is a gain over the ``oracle`` policy's.
    """
    out = {}
    for name, runs in per_seed.items():
        out[name] = {m: {'mean': float(np.mean([r[m] for r in runs])),
                         'ci95': _ci95([r[m] for r in runs])}
                     for m in METRICS}
    base = out.get('no-mig')
    if base:
        for name, res in out.items():
            for gain, metric, lower_is_better in GAINS:
                x0, x = base[metric]['mean'], res[metric]['mean']
                res[gain] = ((x0 - x) if lower_is_better else (x - x0)) / x0 \
                    if x0 else math.nan
        oracle = out.get('oracle')
        for name, res in out.items():
            for gain, share in SHARES:
                og = oracle[gain] if oracle else math.nan
                res[share] = (res[gain] / og if oracle and og > 0
                              else math.nan)
    return out


def _fmt(v, ci=None, digits=1):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return '-'
    text = f'{v:.{digits}f}'
    if ci:
        text += f'±{ci:.{digits}f}'
    return text


def table(agg, n_seeds):
    """The terminal table (means; ± 95 % CI when several seeds). ``gain``
    and ``of oracle`` are the headline's (mean RT over all requests,
    timeouts at the timeout); ``gain RT`` is the completed requests'.
    """
    head = ['policy'] + [LABELS[m] for m in METRICS] + [
        'gain', 'of oracle', 'gain SLO', 'gain thr', 'gain RT']
    rows = []
    for name, res in agg.items():
        row = [name]
        for m in METRICS:
            d = 0 if m in ('timeouts', 'migrations', 'failure_server_s',
                           'slo_goodput') else 1
            row.append(_fmt(res[m]['mean'], res[m]['ci95'] if n_seeds > 1
                            else None, d))
        row.append(_fmt(100 * res.get('gain', math.nan)) + ' %')
        row.append(_fmt(100 * res.get('oracle_share', math.nan), digits=0)
                   + ' %')
        for g in ('gain_slo_goodput', 'gain_throughput', 'gain_rt'):
            row.append(_fmt(100 * res.get(g, math.nan)) + ' %')
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
    doc = {'scenario': scn, 'stretch': stretch, 'headline': HEADLINE,
           'slo_ms': 1000 * slo_seconds(scn), 'results': agg,
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
        # the legends sit outside the axes: 'tight' keeps them in the file
        fig.savefig(path, dpi=100, bbox_inches='tight')
        plt.close(fig)
        paths.append(path)

    order = list(runs)

    def style(name):
        # matplotlib cycles ten colours; past ten policies the line style
        # tells two policies of one colour apart
        i = order.index(name)
        return {'color': f'C{i % 10}', 'ls': ('-', '--', ':')[i // 10 % 3],
                'lw': 1, 'label': name}

    def outside_legend(ax):
        ax.legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.01, 1.0))

    win = 12   # one-minute moving average at 5 s steps
    fig, axes = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for name, tb in runs.items():
        t = tb.t[:tb.k] / 60.0
        thr = tb.rec_completed[:tb.k].sum(axis=1) / tb.dt
        samples, weights = sample_weights(tb)
        ok = ~np.isnan(samples)
        timeout = tb.scn['chains']['timeout']
        lost = tb.rec_timeouts[:tb.k].sum(axis=1)
        # the headline: every request, a timed-out one at the timeout
        num = np.sum(np.where(ok, samples, 0) * weights, axis=(1, 2)) + \
            lost * timeout
        den = np.sum(np.where(ok, weights, 0), axis=(1, 2)) + lost
        rt = 1000 * num / np.maximum(den, 1e-12)
        kern = np.ones(win) / win
        axes[0].plot(t, np.convolve(thr, kern, 'same'), **style(name))
        axes[1].plot(t, np.convolve(rt, kern, 'same'), **style(name))
    axes[0].set_ylabel('throughput (req/s)')
    axes[1].set_ylabel('mean RT, all requests (ms)')
    axes[1].set_xlabel('minutes into the run')
    axes[0].set_title('completed requests per second; mean response time '
                      'of every request, timeouts at the timeout', fontsize=9)
    outside_legend(axes[0])
    save(fig, 'throughput-response-time')

    fig, ax = plt.subplots(figsize=(8, 4.5))
    names = list(runs)
    width = 0.8 / 3
    for i, q in enumerate(('p50', 'p99', 'p100')):
        vals = [summarize(runs[n])[q] for n in names]
        ax.bar(np.arange(len(names)) + (i - 1) * width, vals, width,
               label=q)
    ax.set_xticks(np.arange(len(names)), names, rotation=60, ha='right',
                  fontsize=8)
    ax.set_yscale('log')
    ax.set_ylabel('response time (ms)')
    ax.set_title('percentiles of completed requests (timeouts not '
                 'included: see the CDF)', fontsize=9)
    ax.legend()
    save(fig, 'percentiles')

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, tb in runs.items():
        samples, weights = sample_weights(tb)
        ok = ~np.isnan(samples)
        # timed-out requests sit at the timeout, so the curve of a
        # policy with more timeouts ends lower before it
        v = np.append(samples[ok], tb.scn['chains']['timeout'])
        w = np.append(weights[ok], tb.rec_timeouts[:tb.k].sum())
        idx = np.argsort(v, kind='stable')
        cdf = np.cumsum(w[idx])
        ax.plot(1000 * v[idx], cdf / cdf[-1], **style(name))
    # dash-dot in black: no policy's line takes that style (grey dashed,
    # which it had, is the eighteenth policy's)
    ax.axvline(1000 * slo_seconds(next(iter(runs.values())).scn),
               color='black', ls='-.', lw=0.8, label='SLO')
    ax.set_xscale('log')
    ax.set_xlabel('response time (ms); timeouts at the timeout')
    ax.set_ylabel('share of all requests')
    outside_legend(ax)
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
            axes[0].plot(offs, to_acc / n, **style(name))
            axes[1].plot(offs, rt_acc / n, **style(name))
    axes[0].set_ylabel('timeouts per step (moved chain)')
    axes[1].set_ylabel('mean RT of moved chain (ms)')
    axes[1].set_xlabel('seconds since the migration request')
    outside_legend(axes[0])
    save(fig, 'since-migration')
    return paths
