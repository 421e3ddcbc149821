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

"""The decision loop: train on the training stretch, then run each policy.

For one seed: the training stretch is simulated without migrations (the
history an operator would have), the proposed model is trained on its host
windows with the project's training API, then every policy runs on the
test stretch with the same exogenous load and the same latency noise.
Every ``decision_interval`` seconds the policy decides (one audit) and its
migrate actions start live migrations in the migration model.

The development protocol (``stretch='validation'``) never touches the test
stretch: the model is fitted on the first part of the training stretch
(cluster.FIT_FRACTION, the ``fit`` stretch) and the policies run on the
rest of it (``validation``), so scenario and trigger choices can be made
without looking at test figures.
"""

import numpy as np

from watcher_failpredict.prediction import training
from watcher_failpredict.testbed import cluster
from watcher_failpredict.testbed import policies as pol


#: stretch the policies run on -> stretch the model is trained on
TRAINED_ON = {'test': 'train', 'validation': 'fit'}


def simulate_history(scn, seed, stretch='train'):
    """The stretch before the run, simulated without migrations: the
    history an operator would have (the training stretch, or its ``fit``
    part for the validation protocol).
    """
    tb = cluster.Testbed(scn, seed, stretch)
    tb.run_until(tb.n_steps)
    return tb


def train_model(scn, seed, progress=None, stretch='train', history=None,
                model_kind=None):
    """(bundle, evaluation) trained on the scenario's training stretch
    (or on its ``fit`` part for the validation protocol).

    :param history: that stretch already simulated (simulate_history())
    :param model_kind: default the scenario's ``model.kind``
    """
    tb = history if history is not None else simulate_history(
        scn, seed, stretch)
    return training.train(
        tb.host_windows(), threshold=float(scn['trigger']['threshold']),
        period=scn['trigger']['period'], horizon=scn['model']['horizon'],
        window=scn['model']['window'], max_samples=scn['model'][
            'max_samples'], model_kind=model_kind or scn['model']['kind'],
        random_state=seed, progress=progress)


def run_policy(scn, name, seed, bundle=None, progress=None, influxdb=None,
               stretch='test', history=None, before=None, world=None):
    """Run one policy over the test (or validation) stretch; returns
    (testbed, policy).

    :param influxdb: None (metrics in memory) or ``{'url': ..., 'prefix':
        ...}``: the run's metrics go through a real InfluxDB, database
        ``<prefix>_<scenario>_<policy>_<seed>`` (see influx.py); with
        ``'backend': 'prometheus'`` they go through a real Prometheus
        instead (its remote-write receiver; run label names from the same
        parts, see prom.py)
    :param history: host CPU percent of the stretch before the run, for
        the policies that read it (policies.NEEDS_HISTORY)
    :param before: that stretch's Testbed: the in-memory datasource serves
        its host metrics to audits reaching back past the run's start (a
        model with the cyclic features reads the last load cycle)
    :param world: None, or callable(testbed) that changes the run's
        exogenous load before it starts (a counterfactual world, as
        testbed/twin.py's)
    """
    tb = cluster.Testbed(scn, seed, stretch)
    if world is not None:
        world(tb)
    policy = pol.make_policy(name, scn, tb, seed, bundle, history, before)
    if getattr(policy, 'reach_back', 0) > 0:
        # only a policy reading past its window gets the stretch before:
        # every other policy's first audits see what they always saw
        tb.before = before
    if influxdb and name != 'no-mig' and \
            influxdb.get('backend') == 'prometheus':
        from watcher_failpredict.testbed import prom
        policy.metrics = prom.PrometheusMetrics(
            influxdb['url'], *prom.label_names(
                influxdb.get('prefix', 'testbed'), scn['name'], name, seed))
    elif influxdb and name != 'no-mig':
        from watcher_failpredict.testbed import influx
        policy.metrics = influx.InfluxMetrics(
            influxdb['url'], influx.database_name(
                influxdb.get('prefix', 'testbed'), scn['name'], name, seed),
            influxdb.get('username'), influxdb.get('password'))
    every = int(round(scn['decision_interval'] / tb.dt))
    # the first audit needs a full window of metrics behind it
    first = int(np.ceil(max(scn['model']['window'],
                            scn['trigger']['period']) / tb.dt))
    while tb.k < tb.n_steps:
        tb.run_until(tb.k + every)
        if tb.k >= first and tb.k < tb.n_steps:
            for vnf, dst in policy.decide(tb):
                tb.start_migration(vnf, dst)
        if progress is not None:
            progress(tb.k, tb.n_steps)
    return tb, policy


def _needs_history(names):
    return any(n in pol.TRAINED + pol.NEEDS_HISTORY for n in names)


def run_seed(scn, seed, names, progress=None, influxdb=None,
             stretch='test', world=None):
    """Every policy in ``names`` on one seed.

    :param progress: callable(label, done, total) or None
    :param world: see run_policy(); the training stretch is left as it is
    :returns: {'evaluation': model evaluation or None,
               'runs': {policy: (testbed, policy object)}}
    """
    evaluation, history, before = None, None, None
    bundles, evaluations = {}, {}
    if _needs_history(names):
        if progress:
            progress('train', 0, 1)
        before = simulate_history(scn, seed, TRAINED_ON[stretch])
        history = before.rec_cpu[:, :before.k]
        for kind in dict.fromkeys(pol.trained_kind(n, scn) for n in names
                                  if n in pol.TRAINED):
            bundles[kind], evaluations[kind] = train_model(
                scn, seed, history=before, model_kind=kind)
        if progress:
            progress('train', 1, 1)
    # the held-out scores reported are the scenario's own model's
    evaluation = evaluations.get(scn['model']['kind'],
                                 next(iter(evaluations.values()), None))
    runs = {}
    for name in names:
        def step_progress(done, total, name=name):
            if progress:
                progress(name, done, total)
        runs[name] = run_policy(scn, name, seed, bundles.get(
            pol.trained_kind(name, scn)), step_progress, influxdb, stretch,
            history, before, world)
    return {'evaluation': evaluation, 'runs': runs,
            'bundle': bundles.get(scn['model']['kind'])}


#: What the look-ahead oracle counts, kept in its per-seed summary.
ORACLE_COUNTERS = ('rollouts', 'sources_searched', 'sources_pruned',
                   'bound_misses', 'triggered')
#: What planner-seasonal counts: decisions planned on its forecast and
#: decisions left to its fallback.
PLANNER_COUNTERS = ('planned', 'fell_back')


def seed_summaries(scn, seed, names, influxdb=None, stretch='test',
                   keep_runs=False, progress=None):
    """One seed's figures: ``{'evaluation', 'summaries': {policy:
    summary}, 'runs': {policy: testbed} or None}``; only plain data, so a
    worker process can return it (evaluate(jobs=N)).

    :param keep_runs: keep the testbeds (the plots read the first seed's)
    """
    from watcher_failpredict.testbed import report
    res = run_seed(scn, seed, names, progress, influxdb, stretch)
    summaries = {}
    for name, (tb, policy) in res['runs'].items():
        summary = report.summarize(tb)
        summary['seed'] = seed
        summary['audits'] = policy.calls
        # the look-ahead oracle's work and how often its bound missed; how
        # often the planner trusted its forecast
        for key in ORACLE_COUNTERS + PLANNER_COUNTERS:
            if hasattr(policy, key):
                summary[key] = getattr(policy, key)
        summaries[name] = summary
    return {'evaluation': res['evaluation'], 'summaries': summaries,
            'runs': {n: tb for n, (tb, _) in res['runs'].items()}
            if keep_runs else None}


def evaluate(scn, names, seeds=1, progress=None, influxdb=None,
             stretch='test', jobs=1):
    """Every policy on ``seeds`` seeds (scenario seed, seed + 1, ...).

    :param stretch: 'test' (model trained on the training stretch) or
        'validation' (model fitted on the training stretch's first part,
        policies run on its rest; the test stretch is never simulated)

    :param influxdb: see run_policy()
    :param progress: callable(done, total, note) or None; ``total`` counts
        one unit per training and per test stretch step block
    :param jobs: seeds run at once, each in its own process (the seeds
        are independent; the figures are the same for any ``jobs``)
    :returns: dict with ``per_seed`` ({policy: [summary]}), ``aggregate``,
        ``evaluations`` (the model's held-out scores per seed) and
        ``runs`` (the first seed's {policy: testbed}, for the plots)
    """
    from watcher_failpredict.testbed import report
    if stretch not in TRAINED_ON:
        raise ValueError(f'stretch must be test or validation, got '
                         f'{stretch!r}')
    unknown = [n for n in names if n not in pol.POLICIES]
    if unknown:
        raise ValueError(f'unknown policy {unknown}; known: '
                         f'{", ".join(pol.POLICIES)}')
    if jobs < 1:
        raise ValueError(f'jobs must be at least 1, got {jobs}')
    seed_list = [scn['seed'] + i for i in range(seeds)]
    if jobs > 1 and seeds > 1:
        results = _parallel_seeds(scn, seed_list, names, influxdb, stretch,
                                  jobs, progress)
    else:
        results = _serial_seeds(scn, seed_list, names, influxdb, stretch,
                                progress)
    per_seed = {n: [] for n in names}
    evaluations = []
    for res in results:
        if res['evaluation'] is not None:
            evaluations.append(res['evaluation'])
        for name in names:
            per_seed[name].append(res['summaries'][name])
    return {'per_seed': per_seed, 'aggregate': report.aggregate(per_seed),
            'evaluations': evaluations, 'runs': results[0]['runs']}


def _serial_seeds(scn, seed_list, names, influxdb, stretch, progress):
    units = 20                       # progress units per stretch
    total = len(seed_list) * (len(names) + _needs_history(names)) * units
    done = [0]
    results = []
    for i, seed in enumerate(seed_list):
        def tick(label, d, t, seed=seed):
            if progress is not None:
                frac = int(units * d / max(t, 1))
                progress(done[0] + frac, total, f'seed {seed} {label}')
                if d >= t:
                    done[0] += units
        results.append(seed_summaries(scn, seed, names, influxdb, stretch,
                                      keep_runs=i == 0, progress=tick))
    return results


def _parallel_seeds(scn, seed_list, names, influxdb, stretch, jobs,
                    progress):
    import concurrent.futures
    import multiprocessing
    # spawn, not fork: the parent has loaded Watcher, oslo and numpy's
    # thread pools, which a forked child must not inherit mid-state
    ctx = multiprocessing.get_context('spawn')
    with concurrent.futures.ProcessPoolExecutor(
            max_workers=min(jobs, len(seed_list)), mp_context=ctx) as pool:
        futures = [pool.submit(seed_summaries, scn, seed, names, influxdb,
                               stretch, i == 0)
                   for i, seed in enumerate(seed_list)]
        if progress is not None:
            progress(0, len(seed_list), 'seeds')
        for n, _ in enumerate(concurrent.futures.as_completed(futures), 1):
            if progress is not None:
                progress(n, len(seed_list), 'seeds')
        return [f.result() for f in futures]
