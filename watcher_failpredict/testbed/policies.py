"""The policies compared by the testbed.

Every migrating policy is the REAL ``predicted_least_failure`` strategy,
loaded by Watcher's own strategy loader from the ``watcher_strategies``
entry point (exactly what watcher-decision-engine does), run through its
public ``execute()`` on a Watcher ModelRoot of the testbed, reading the
testbed's metrics through the InMemoryDataSource. They differ only in the
ranking model injected as the strategy's ``model_bundle``, so trigger,
VNF choice, feasibility and cooldown are identical (like-for-like):

* ``proposed``: the model trained on the scenario's training stretch;
* ``least-cpu``: risk = the host's mean CPU over the trigger period now
  (with the VNF's load added), i.e. the least-CPU-now destination;
* ``random``: a random risk per host, i.e. a random feasible destination;
* ``oracle``: risk = the realised future peak of the host's rolling-mean
  CPU over the horizon (it knows the future load): the limit of any
  ranking model.

``no-mig`` never migrates. A new policy is a new ranking object (anything
with ``metadata`` and ``predict_risk(windows)``) added to make_policy().
Watcher's ``workload_balance`` and the forecasting baselines are hooks
left for later (see doc/source/testbed.rst).
"""

import warnings

import numpy as np
from watcher.common import utils
from watcher.decision_engine.loading import default as loading
from watcher.decision_engine.solution import default as solution_mod

from watcher_failpredict.prediction import labels
from watcher_failpredict.strategies import predicted_least_failure as plf

POLICIES = ('no-mig', 'random', 'least-cpu', 'proposed', 'oracle')


def model_metadata(scn):
    """The metadata a ranking model must carry for the strategy."""
    return {'model_kind': 'svm', 'threshold': float(
        scn['trigger']['threshold']), 'period': scn['trigger']['period'],
        'horizon': scn['model']['horizon'], 'window': scn['model']['window'],
        'granularity': scn['metrics_interval']}


def _period_mean(windows, steps):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        return np.nanmean(windows.data['cpu'][:, -steps:], axis=1)


class CurrentCpuRisk:
    """Least-CPU-now: risk = mean CPU over the trigger period / 100."""

    def __init__(self, metadata):
        self.metadata = dict(metadata)
        self.steps = max(metadata['period'] // metadata['granularity'], 1)

    def predict_risk(self, windows):
        return np.clip(_period_mean(windows, self.steps) / 100.0, 0.0, None)


class RandomRisk:
    """A random risk per host: a uniformly random feasible destination."""

    def __init__(self, metadata, rng):
        self.metadata = dict(metadata)
        self.rng = rng

    def predict_risk(self, windows):
        return self.rng.random(len(windows.names))


class OracleRisk:
    """The realised future: peak rolling-mean CPU over the horizon / 100.

    The future comes from the testbed itself (its exogenous background
    load and request rates, the placement once the migrations under way
    have finished). The load a planned move adds is read from the windows
    the strategy passes (their period mean minus the host's measured one).
    """

    def __init__(self, metadata, testbed):
        self.metadata = dict(metadata)
        self.tb = testbed
        self.steps = max(metadata['period'] // metadata['granularity'], 1)

    def predict_risk(self, windows):
        tb, md = self.tb, self.metadata
        future = tb.future_host_cpu(md['horizon'])
        per = max(int(round(md['period'] / tb.dt)), 1)
        past = tb.rec_cpu[:, max(tb.k - per, 0):tb.k]
        rolled = labels.rolling_mean(np.concatenate([past, future], 1), per)
        peak = np.nanmax(rolled[:, past.shape[1]:], axis=1) \
            if future.shape[1] else np.nanmax(rolled, axis=1)
        _, host, _ = tb.metric_samples(max(tb.k - per, 0))
        measured = np.nanmean(host['cpu'][:, -self.steps:], axis=1) \
            if host else np.zeros(tb.n_servers)
        seen = _period_mean(windows, self.steps)
        out = np.empty(len(windows.names))
        for i, name in enumerate(windows.names):
            s = int(name.rsplit('-', 1)[1])
            extra = seen[i] - measured[s]
            out[i] = (peak[s] + (extra if np.isfinite(extra) else 0.0)) / 100
        return out


def load_strategy():
    """``predicted_least_failure`` as Watcher's decision engine loads it.

    Watcher's loader re-reads the service's configuration files after
    registering the strategy's options; the testbed has none, so that
    re-read is skipped on this loader instance only.
    """
    loader = loading.DefaultStrategyLoader()
    loader._reload_config = lambda: None
    return loader.load('predicted_least_failure')


class NoMigration:
    name = 'no-mig'
    calls = 0

    def decide(self, tb):
        return []


class StrategyPolicy:
    """A policy that runs the real strategy with a given ranking model.

    ``strategy`` is the object Watcher's loader returned; each decision is
    one audit: a fresh solution, the ModelRoot and datasource of the
    testbed now, then ``execute()``. ``calls`` counts the audits.
    """

    def __init__(self, name, scn, bundle):
        self.name = name
        self.scn = scn
        self.strategy = load_strategy()
        self.strategy.model_bundle = bundle
        self.calls = 0
        self.history = []   # plf.Migration of the moves carried out

    def decide(self, tb):
        """Run one audit; returns [(vnf index, destination index)]."""
        s, scn = self.strategy, self.scn
        now = tb.now()
        s.solution = solution_mod.DefaultSolution(goal=s.goal, strategy=s)
        s._compute_model = tb.compute_model()
        s.input_parameters = utils.Struct(
            threshold=float(scn['trigger']['threshold']),
            period=scn['trigger']['period'],
            granularity=scn['metrics_interval'],
            horizon=scn['model']['horizon'],
            max_migrations=scn['strategy']['max_migrations'],
            cooldown=scn['strategy']['cooldown'])
        history = max(scn['model']['window'], scn['trigger']['period']) + \
            3 * scn['metrics_interval']
        s.datasource_backend = tb.datasource(history)
        # what Watcher's action table would say: a migration under way
        # blocks its VNF and destination whatever its age, a finished one
        # counts from its completion (not from the audit that planned it)
        s.migration_history = tb.migration_history
        s.clock = lambda: now
        self.calls += 1
        solution = s.execute()
        out = []
        for action in solution.actions:
            p = action['input_parameters']
            vnf = int(p['resource_id'].rsplit('-', 1)[1])
            dst = int(p['destination_node'].rsplit('-', 1)[1])
            out.append((vnf, dst))
            self.history.append(plf.Migration(
                p['resource_id'], p['source_node'], p['destination_node'],
                now))
        return out


def make_policy(name, scn, tb, seed, trained_bundle=None):
    """The policy ``name`` for testbed ``tb``."""
    md = model_metadata(scn)
    if name == 'no-mig':
        return NoMigration()
    if name == 'random':
        return StrategyPolicy(name, scn, RandomRisk(
            md, np.random.default_rng([seed, 11])))
    if name == 'least-cpu':
        return StrategyPolicy(name, scn, CurrentCpuRisk(md))
    if name == 'oracle':
        return StrategyPolicy(name, scn, OracleRisk(md, tb))
    if name == 'proposed':
        if trained_bundle is None:
            raise ValueError('the proposed policy needs the model trained on '
                             'the training stretch')
        return StrategyPolicy(name, scn, trained_bundle)
    raise ValueError(f'unknown policy {name!r}; known: {", ".join(POLICIES)}')

