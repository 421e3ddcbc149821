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

"""The policies compared by the testbed.

Every migrating policy is the REAL ``predicted_least_failure`` strategy,
loaded by Watcher's own strategy loader from the ``watcher_strategies``
entry point (exactly what watcher-decision-engine does), run through its
public ``execute()`` on a Watcher ModelRoot of the testbed, reading the
testbed's metrics through the InMemoryDataSource. They differ only in the
ranking model injected as the strategy's ``model_bundle``, so trigger,
VNF choice, feasibility and cooldown are identical (like-for-like):

* ``proposed``: the strategy with its defaults (planned mode, with
  ``starved_window`` 60) and the model trained on the scenario's training
  stretch; ``proposed-reactive`` the same model behind the reactive rules
  as they were the default before (:data:`REACTIVE`), and
  ``proposed-cycle`` those rules on the same learner with the cyclic
  features, which read each server's last load cycle;
* ``least-cpu``: risk = the host's mean CPU over the trigger period now
  (with the VNF's load added), i.e. the least-CPU-now destination;
* ``random``: a random risk per host, i.e. a random feasible destination;
* ``oracle-peak``: risk = the realised future peak of the host's
  rolling-mean CPU over the horizon (it knows the future load): the limit
  of a ranking by the next horizon's peak, not of QoS (the issue 11
  diagnosis: policies beat it).

Two more run the strategy's reactive rules (its whether-to-move rule and
VNF choice, :data:`REACTIVE`) instead of the simple rules' always-move:
``least-cpu-gated`` and ``seasonal-gated`` (``least-cpu``'s and
``seasonal``'s rankings behind that rule). ``perfect-model`` (and
``perfect-model-stay``, its targets known over the VNF's stay instead of
the horizon, and ``perfect-model-proactive``, so known in proactive mode)
is the strategy, with those rules, fed a model that predicts its training
targets
exactly (:class:`PerfectModel`): what a
better model of those targets is worth to the strategy's decisions (a
measure, not a bound: a perfect forecast of these targets is not the
best possible input), where the look-ahead ``oracle`` measures what
better decisions are worth.

* ``mean-kstd``: risk = mean + 2 std of the host's CPU over the model's
  window (``prediction.baselines.mean_kstd``, a headroom rule);
* ``trend``: risk = the least-squares line over the window extrapolated to
  t + the migration time (``prediction.baselines.linear_trend``): the load
  when a move started now would have completed.
* ``seasonal``: risk = the peak period-mean CPU over the horizon one load
  cycle earlier (``prediction.baselines.seasonal_naive``), each server's
  cycle estimated from the stretch before the run
  (``prediction.baselines.estimate_cycle_steps``); persistence for a
  server without a cycle.

``least-cpu-wb`` is different on purpose: it is Watcher's own
``workload_balance`` strategy (loaded by the same loader from Watcher's
entry point) with its schema's defaults, ``metrics: instance_cpu_usage``
and the scenario's trigger threshold, on the same ModelRoot and
datasource. It has its own trigger and VNF choice: a host is overloaded
when the *sum of its instances' CPU* reaches the threshold, which does not
include the background load a server also runs.

``oracle`` is not the strategy: it is the look-ahead oracle of
:mod:`testbed.lookahead`, which simulates every feasible move forward
over the true future load and takes the best by the headline metric,
with the strategy's decision cadence, move budget and cooldown.
``oracle-reactive`` is the same search held to the reactive strategy's
rules (sources only the hosts in failure state, one VNF each), and
``lookahead-persistence`` the same search without foresight (the future
load held at its recent mean), ``lookahead-seasonal`` the same search on a
seasonal forecast (the load one cycle earlier): measures of what the
trigger, the future and a forecast of it are worth, not bounds
(doc/source/testbed.rst). ``planner-seasonal`` (:mod:`testbed.planner`)
is not that search: it plans with the strategy's queueing model on a
seasonal forecast of what collectd reports, while that forecast has been
right, and leaves the decision to the strategy's reactive rule
otherwise. ``proposed`` is the strategy running that planner itself
(``mode=planned``, its default) with the trained model loaded; its
reactive fallback ranks destinations by CPU now (``fallback_ranking``'s
default). ``proposed-planned`` is planned mode without ``starved_window``
(:func:`planned_parameters`), ``proposed-reactive-starved`` the reactive
rules with it.

``no-mig`` never migrates. A new policy is a new ranking object (a
:class:`prediction.risk_model.RiskModel`) added to make_policy(). The
rankings that need only the windows the strategy passes are in
:mod:`prediction.baseline_risk`; the oracle and the seasonal ranking read
the testbed's own record of host CPU (the future, the past at 5 s), so
they are here.
"""

import numpy as np
from oslo_config import cfg
from watcher.common import utils
from watcher.decision_engine.loading import default as loading
from watcher.decision_engine.solution import default as solution_mod

from watcher_failpredict.prediction import baseline_risk
from watcher_failpredict.prediction import baselines
from watcher_failpredict.prediction import cycles
from watcher_failpredict.prediction import feature_sets
from watcher_failpredict.prediction import labels
from watcher_failpredict.prediction import risk_model
from watcher_failpredict.strategies import migrations
from watcher_failpredict.strategies import predicted_least_failure as plf
from watcher_failpredict.strategies import ranking_check
from watcher_failpredict.testbed import cluster
from watcher_failpredict.testbed import lookahead
from watcher_failpredict.testbed import physics
from watcher_failpredict.testbed import planner

POLICIES = ('no-mig', 'random', 'least-cpu', 'least-cpu-wb', 'mean-kstd',
            'trend', 'seasonal', 'least-cpu-gated', 'seasonal-gated',
            'proposed', 'proposed-proactive', 'proposed-cycle',
            'oracle-peak', 'perfect-model', 'perfect-model-stay',
            'perfect-model-proactive', 'lookahead-persistence',
            'lookahead-seasonal', 'planner-seasonal', 'planner-perfect',
            'proposed-planned',
            'proposed-reactive', 'proposed-reactive-starved',
            'oracle-reactive', 'oracle')

#: Policies that need the model trained on the training stretch.
TRAINED = ('proposed', 'proposed-proactive', 'proposed-cycle',
           'proposed-planned', 'proposed-reactive',
           'proposed-reactive-starved')
#: ``starved_window`` of ``proposed-reactive-starved``: the strategy's
#: default, the decision interval, the shortest span a continuous audit
#: sees anew (doc/source/strategy.rst, "A host starved within the trigger
#: period").
STARVED_WINDOW = 60
#: The strategy's reactive rules as they were its defaults until planned
#: mode with ``starved_window`` 60 took their place (issue 11): reactive
#: mode, the threshold alone as the trigger. The policies that measure a
#: ranking, a model or a rule behind those rules keep them, so that their
#: rows stay what the documentation says they measured.
REACTIVE = {'mode': 'reactive', 'starved_window': 0}
#: The model kind of a trained policy whose model is not the scenario's
#: (``model.kind``): proposed-cycle is proposed with the cyclic features,
#: each server's last load cycle and its forecasters' errors (issue 11).
TRAINED_KIND = {'proposed-cycle': 'gbt_peak_cycle'}
#: The simple rules move whenever the threshold is crossed (the paper's
#: trigger, Watcher's workload_balance): they are what an operator would
#: otherwise run, so the strategy's whether-to-move rule is switched off
#: for them (``move_rule: speed_floor`` with ``speed_floor: 1``), and so
#: is its trigger on hosts starved within the trigger period
#: (``starved_window: 0``: the paper's threshold alone).
#: least-cpu-gated keeps the strategy's rule, to show what it is worth
#: with the simplest ranking. The rules also keep the VNF choice they
#: always had (the cheapest VNF whose departure ends the overload): on the
#: validation stretch the choice that relieves the most made least-cpu
#: worse on paper (+26.0 % -> +11.6 %) and trend and seasonal better
#: (doc/source/testbed.rst, "Which VNF"); their rows stay the baselines
#: they were. least-cpu-gated takes the strategy's reactive rules.
RULE = dict(REACTIVE, move_rule='speed_floor', speed_floor=1.0,
            instance_choice='cheapest_ending')
#: Policies that read the stretch before the run.
NEEDS_HISTORY = ('seasonal', 'seasonal-gated', 'lookahead-seasonal',
                 'planner-seasonal')
#: The strongest autocorrelation a server's history must show for its
#: peak lag to count as its load cycle (fixed before any run; the one the
#: cyclic model's training uses).
MIN_CYCLE_CORRELATION = cycles.MIN_CORRELATION


def trained_kind(name, scn):
    """The model kind trained policy ``name`` runs on."""
    return TRAINED_KIND.get(name, scn['model']['kind'])


def planned_parameters(scn):
    """The strategy's planned mode as the testbed runs it: its defaults,
    with the look-ahead the oracle searches over (the longest migration,
    two cooldowns and the client timeout) and a history as long as the
    stretch before the run (two of the longest load cycle on the built-in
    scenarios), at least twice the look-ahead the strategy requires.
    """
    ahead = int(lookahead.look_ahead_seconds(scn))
    return {'mode': 'planned', 'look_ahead': ahead, 'planner_history': int(
        max(scn['train_duration'], 2 * ahead))}


def model_metadata(scn):
    """The metadata a ranking model must carry for the strategy."""
    return {'model_kind': scn['model']['kind'], 'threshold': float(
        scn['trigger']['threshold']), 'period': scn['trigger']['period'],
        'horizon': scn['model']['horizon'], 'window': scn['model']['window'],
        'granularity': scn['metrics_interval']}


def migration_seconds(scn):
    """The migration model's duration for one VNF at 80 % CPU (the
    paper's measurement point): the ``trend`` baseline's horizon.
    """
    mig = scn['migration']
    total, _ = physics.migration_duration(
        scn['chains']['memory_mb'], 0.8, mig['bandwidth_mb_s'],
        mig['dirty_mb_s_at_full_cpu'], mig['setup_s'], mig['max_downtime_s'])
    return total


def _plus_move_load(windows, tb, steps, server_cpu):
    """Risk per window: ``server_cpu`` (percent, per server) plus the load
    the planned move adds, which is the windows' trigger-period mean minus
    what the server measured over the same ``steps`` samples.
    """
    period_steps = steps * int(round(tb.scn['metrics_interval'] / tb.dt))
    _, host, _ = tb.metric_samples(max(tb.k - period_steps, 0))
    measured = np.nanmean(host['cpu'][:, -steps:], axis=1) \
        if host else np.zeros(tb.n_servers)
    seen = baseline_risk.period_mean(windows, steps)
    out = np.empty(len(windows.names))
    for i, name in enumerate(windows.names):
        s = cluster.host_index(name)
        extra = seen[i] - measured[s]
        out[i] = (server_cpu[s] + (extra if np.isfinite(extra) else 0.0)) \
            / 100
    return out


class OracleRisk(risk_model.RankingRisk):
    """The realised future: peak rolling-mean CPU over the horizon / 100.

    The future comes from the testbed itself (its exogenous background
    load and request rates, the placement once the migrations under way
    have finished). The load a planned move adds is read from the windows
    the strategy passes (their period mean minus the host's measured one).
    """

    def __init__(self, metadata, testbed, horizon=None):
        super().__init__(metadata)
        self.tb = testbed
        self.steps = max(metadata['period'] // metadata['granularity'], 1)
        #: seconds looked ahead (default: the model's horizon)
        self.horizon = metadata['horizon'] if horizon is None else horizon

    def predict_risk(self, windows):
        tb, md = self.tb, self.metadata
        future = tb.future_host_cpu(self.horizon)
        per = max(int(round(md['period'] / tb.dt)), 1)
        past = tb.rec_cpu[:, max(tb.k - per, 0):tb.k]
        rolled = labels.rolling_mean(np.concatenate([past, future], 1), per)
        peak = np.nanmax(rolled[:, past.shape[1]:], axis=1) \
            if future.shape[1] else np.nanmax(rolled, axis=1)
        return _plus_move_load(windows, tb, self.steps, peak)


class PerfectModel(OracleRisk):
    """A model that predicts its training targets exactly: the failure
    label (the trigger-period mean CPU reaches the threshold within the
    horizon: 1, else 0) and the peak regressor's target (that peak, in
    percent), both from the realised future with the planned move's load
    added. The strategy ranks and triggers on them as on a trained
    bundle's outputs, so what it gains is what a better model of these
    targets is worth to its decisions. ``horizon`` (seconds, default the
    model's) is how far ahead the targets are known; the strategy still
    runs with the scenario's parameters.
    """

    has_peak_model = True

    def predict_risk_and_peak(self, windows):
        peak = 100.0 * OracleRisk.predict_risk(self, windows)
        return (peak >= float(self.metadata['threshold'])).astype(float), peak

    def predict_risk(self, windows):
        return self.predict_risk_and_peak(windows)[0]


class SeasonalRisk(risk_model.RankingRisk):
    """Seasonal naive: what the host did one load cycle ago.

    risk = the peak over the horizon of the host's trigger-period mean
    CPU, one cycle before now, plus the load the planned move adds (read
    from the windows the strategy passes, as the oracle does). The host
    CPU comes from the testbed's record of this run, preceded by the
    stretch simulated before it (``history``: the training stretch, with
    no migrations); a server's cycle is the peak of its autocorrelation
    in ``history`` between the horizon and half the stretch. A server
    without a cycle (or a lag reaching before ``history``) falls back to
    persistence, the mean over the trigger period now.

    :param history: host CPU percent (servers, steps) of the stretch that
        ends where the run starts, at the testbed's step
    """

    def __init__(self, metadata, testbed, history):
        super().__init__(metadata)
        self.tb = testbed
        history = np.asarray(history, dtype=float)
        if history.shape[0] != testbed.n_servers:
            raise ValueError(f'history has {history.shape[0]} servers, the '
                             f'testbed {testbed.n_servers}')
        self.history = history
        dt = testbed.dt
        self.period = max(int(round(metadata['period'] / dt)), 1)
        self.horizon = max(int(round(metadata['horizon'] / dt)), 1)
        self.cycle = baselines.estimate_cycle_steps(
            labels.rolling_mean(history, self.period)[:, self.period:],
            self.horizon, history.shape[1], MIN_CYCLE_CORRELATION)
        self.steps = max(metadata['period'] // metadata['granularity'], 1)

    def predict_risk(self, windows):
        tb = self.tb
        # only the columns the longest cycle reaches back to (with its
        # horizon and trigger period), not the whole record, each audit
        need = int(max(self.cycle.max(), self.horizon)) + self.period + \
            self.horizon
        recent = tb.rec_cpu[:, max(tb.k - need, 0):tb.k]
        cpu = np.concatenate([self.history[:, self.history.shape[1] - max(
            need - recent.shape[1], 0):], recent], axis=1)
        now = cpu.shape[1]
        t_index = np.full(tb.n_servers, now)
        hosts = np.arange(tb.n_servers)
        score = baselines.seasonal_naive(
            cpu, t_index, hosts, self.period, self.horizon,
            np.maximum(self.cycle, self.horizon))
        # no cycle: persistence, as seasonal_naive does without history
        score = np.where(self.cycle > 0, score, baselines.persistence(
            cpu, t_index, hosts, self.period))
        return _plus_move_load(windows, tb, self.steps, score)


def _strategy_loader():
    """Watcher's strategy loader on a configuration without files.

    The loader registers a strategy's options on its ``conf`` and re-reads
    the service's configuration files; the testbed has none, so its loader
    reads a configuration parsed from no file at all: every option at its
    default, as a watcher.conf that does not set them gives.
    """
    conf = cfg.ConfigOpts()
    conf(args=[], default_config_files=[], default_config_dirs=[])
    loader = loading.DefaultStrategyLoader()
    loader.conf = conf
    return loader


def strategy_defaults():
    """``predicted_least_failure``'s input parameters when an audit sets
    none, filled as Watcher's API fills them (from the class: no loader
    or configuration needed).
    """
    params = {}
    utils.StrictDefaultValidatingDraft4Validator(
        plf.PredictedLeastFailure.get_schema()).validate(params)
    return params


def load_strategy():
    """``predicted_least_failure`` as Watcher's decision engine loads it."""
    return _strategy_loader().load('predicted_least_failure')


def set_audit_inputs(strategy, compute_model, datasource):
    """Give one of Watcher's own strategies the testbed's (or a
    benchmark's) cluster model and datasource.

    Watcher's BaseStrategy builds both itself from its collectors and
    ``[watcher_datasources]`` and offers no setter (Watcher's own unit
    tests set these attributes the same way); ``predicted_least_failure``
    has setters and does not need this.
    """
    strategy._compute_model = compute_model
    strategy._datasource_backend = datasource


class NoMigration:
    name = 'no-mig'
    calls = 0
    metrics = None

    def decide(self, tb):
        return []


class StrategyPolicy:
    """A policy that runs the real strategy with a given ranking model.

    ``strategy`` is the object Watcher's loader returned; each decision is
    one audit: a fresh solution, the ModelRoot and datasource of the
    testbed now, then ``execute()``. ``calls`` counts the audits.
    """

    def __init__(self, name, scn, bundle, extra_params=None):
        self.name = name
        self.scn = scn
        #: strategy input parameters beyond the scenario's (e.g. mode)
        self.extra_params = dict(extra_params or {})
        if name not in TRAINED:
            # the ranking check is the trained model's: a baseline ranks
            # by its own rule, unchecked (perfect-model stays a bound)
            self.extra_params.setdefault('ranking_check', False)
        self.strategy = load_strategy()
        self.strategy.model_bundle = bundle
        # the audits the ranking check judges: this policy's own, as a
        # decision engine would remember them (never another policy's)
        self.strategy.audit_memory = ranking_check.AuditMemory()
        #: where the strategy reads the testbed's metrics: None for an
        #: InMemoryDataSource, or an influx.InfluxMetrics (``--influxdb``)
        self.metrics = None
        self.calls = 0
        self.history = []   # migrations.Migration of the moves carried out
        #: seconds before the window the strategy reads: a model with the
        #: cyclic features reads each host's last load cycle
        self.reach_back = 0.0
        md = getattr(bundle, 'metadata', {})
        if md.get('feature_set') == 'cyclic':
            lags = feature_sets.host_lags(md['feature_params'], [
                cluster.host_name(i) for i in range(scn['servers']['count'])],
                scn['metrics_interval'])
            self.reach_back = float(lags.max(initial=0.0))
        # the parameters the strategy will run with: the policy's, the
        # schema's defaults filled in as Watcher's API fills them
        runs_with = dict(self.extra_params)
        utils.StrictDefaultValidatingDraft4Validator(
            self.strategy.get_schema()).validate(runs_with)
        if runs_with['mode'] == 'planned':
            self.reach_back = max(self.reach_back, float(
                runs_with['planner_history']))
            #: audits planned on the forecast, and left to the reactive
            #: rules (runner.PLANNER_COUNTERS)
            self.planned = self.fell_back = 0

    def decide(self, tb):
        """Run one audit; returns [(vnf index, destination index)]."""
        s, scn = self.strategy, self.scn
        now = tb.now()
        s.solution = solution_mod.DefaultSolution(goal=s.goal, strategy=s)
        s.compute_model = tb.compute_model()
        s.input_parameters = utils.Struct(
            threshold=float(scn['trigger']['threshold']),
            period=scn['trigger']['period'],
            granularity=scn['metrics_interval'],
            horizon=scn['model']['horizon'],
            max_migrations=scn['strategy']['max_migrations'],
            cooldown=scn['strategy']['cooldown'],
            received_cooldown=scn['strategy'].get('received_cooldown', 0),
            **self.extra_params)
        history = max(scn['model']['window'], scn['trigger']['period']) + \
            3 * scn['metrics_interval'] + self.reach_back
        ds = self.metrics.datasource(tb, history) if self.metrics \
            else tb.datasource(history)
        ds.clock = lambda: now
        s.datasource_backend = ds
        # what Watcher's action table would say: a migration under way
        # blocks its VNF and destination whatever its age, a finished one
        # counts from its completion (not from the audit that planned it)
        s.migration_history = tb.migration_history
        s.clock = lambda: now
        self.calls += 1
        solution = s.execute()
        if hasattr(self, 'planned'):
            if s.planned_on_forecast:
                self.planned += 1
            else:
                self.fell_back += 1
        return _moves(solution, self.history, now)


def _moves(solution, history, now):
    """[(vnf index, destination index)] of a solution's migrate actions,
    also appended to ``history`` as migrations.Migration.
    """
    out = []
    for action in solution.actions:
        if action['action_type'] != 'migrate':
            continue
        p = action['input_parameters']
        out.append((cluster.vnf_index(p['resource_id']),
                    cluster.host_index(p['destination_node'])))
        history.append(migrations.Migration(
            p['resource_id'], p['source_node'], p['destination_node'], now))
    return out


def load_workload_balance():
    """Watcher's ``workload_balance`` as its decision engine loads it."""
    return _strategy_loader().load('workload_balance')


def workload_balance_parameters(scn):
    """Its input parameters as Watcher fills them: the schema's defaults
    (period 300 s, granularity 300 s), with ``metrics:
    instance_cpu_usage`` and the scenario's trigger threshold.
    """
    strategy_cls = type(load_workload_balance())
    params = {'metrics': 'instance_cpu_usage',
              'threshold': float(scn['trigger']['threshold'])}
    utils.StrictDefaultValidatingDraft4Validator(
        strategy_cls.get_schema()).validate(params)
    return params


class WorkloadBalancePolicy:
    """Watcher's own ``workload_balance`` on the testbed (``least-cpu-wb``).

    Each decision is one audit of the object Watcher's loader returned,
    on the same ModelRoot and datasource as the other policies. Its
    trigger is its own: the sum of a host's instances' CPU (in cores)
    over the host's vCPUs at or above the threshold; the background load
    is not an instance and is not counted.
    """

    def __init__(self, scn):
        self.name = 'least-cpu-wb'
        self.scn = scn
        self.strategy = load_workload_balance()
        self.parameters = workload_balance_parameters(scn)
        self.metrics = None
        self.calls = 0
        self.history = []

    def decide(self, tb):
        s, scn = self.strategy, self.scn
        now = tb.now()
        s.solution = solution_mod.DefaultSolution(goal=s.goal, strategy=s)
        model = tb.compute_model()
        s.input_parameters = utils.Struct(**self.parameters)
        s.instance_migrations_count = 0
        history = max(scn['trigger']['period'], self.parameters['period']) \
            + 3 * max(scn['metrics_interval'], self.parameters['granularity'])
        ds = self.metrics.datasource(tb, history) if self.metrics \
            else tb.datasource(history)
        ds.clock = lambda: now
        set_audit_inputs(s, model, ds)
        self.calls += 1
        return _moves(s.execute(), self.history, now)


def make_policy(name, scn, tb, seed, trained_bundle=None, history=None,
                before=None):
    """The policy ``name`` for testbed ``tb``.

    :param trained_bundle: the model trained before the run (TRAINED)
    :param history: host CPU of the stretch before the run (NEEDS_HISTORY)
    :param before: that stretch's Testbed (``lookahead-seasonal``,
        ``planner-seasonal``)
    """
    md = model_metadata(scn)
    if name == 'no-mig':
        return NoMigration()
    if name == 'random':
        return StrategyPolicy(name, scn, baseline_risk.RandomRisk(
            md, np.random.default_rng([seed, 11])), RULE)
    if name == 'least-cpu':
        return StrategyPolicy(name, scn, baseline_risk.CurrentCpuRisk(md),
                              RULE)
    if name == 'least-cpu-gated':
        return StrategyPolicy(name, scn, baseline_risk.CurrentCpuRisk(md),
                              REACTIVE)
    if name == 'least-cpu-wb':
        return WorkloadBalancePolicy(scn)
    if name == 'mean-kstd':
        return StrategyPolicy(name, scn, baseline_risk.BaselineRisk(
            md, 'mean_kstd'), RULE)
    if name == 'trend':
        return StrategyPolicy(name, scn, baseline_risk.BaselineRisk(
            md, 'linear_trend', migration_seconds(scn)), RULE)
    if name == 'oracle-peak':
        return StrategyPolicy(name, scn, OracleRisk(md, tb), RULE)
    if name == 'perfect-model':
        return StrategyPolicy(name, scn, PerfectModel(md, tb), REACTIVE)
    if name == 'perfect-model-stay':
        # reactive, its targets known over the VNF's stay: whether judging
        # destinations over the stay instead of the horizon lifts the
        # reactive rule (it does not: doc/source/testbed.rst)
        return StrategyPolicy(name, scn, PerfectModel(
            md, tb, horizon=lookahead.look_ahead_seconds(scn)), REACTIVE)
    if name == 'perfect-model-proactive':
        # known over the VNF's stay, not the scenario's horizon: at 300 s
        # a perfect model made proactive mode lose on paper-phases (-2.0 %,
        # validation), at 1260 s it gained 47.7 % (doc/source/testbed.rst)
        return StrategyPolicy(name, scn, PerfectModel(
            md, tb, horizon=lookahead.look_ahead_seconds(scn)),
            dict(REACTIVE, mode='proactive'))
    if name == 'oracle':
        return lookahead.LookAheadOracle(scn)
    if name == 'oracle-reactive':
        return lookahead.ReactiveLookAheadOracle(scn)
    if name == 'lookahead-persistence':
        return lookahead.PersistenceLookAhead(scn)
    if name in ('lookahead-seasonal', 'planner-seasonal') and before is None:
        raise ValueError(f'the {name} policy needs the stretch before the '
                         'run')
    if name == 'lookahead-seasonal':
        return lookahead.SeasonalLookAhead(scn, before)
    if name == 'planner-perfect':
        # the strategy's own speed_floor, as its planned mode gates with
        return planner.PerfectForecastPlanner(scn, strategy_defaults()[
            'speed_floor'])
    if name == 'planner-seasonal':
        # when its forecast has not been right: the strategy's own
        # reactive rule, on the ranking that needs no training
        return planner.SeasonalQueueingPlanner(scn, before, StrategyPolicy(
            name, scn, baseline_risk.CurrentCpuRisk(md), REACTIVE))
    if name in ('seasonal', 'seasonal-gated'):
        if history is None:
            raise ValueError(f'the {name} policy needs the host CPU of the '
                             'stretch before the run')
        return StrategyPolicy(name, scn, SeasonalRisk(md, tb, history),
                              RULE if name == 'seasonal' else REACTIVE)
    if name in TRAINED:
        if trained_bundle is None:
            raise ValueError(f'the {name} policy needs the model trained on '
                             f'the training stretch')
        # proposed: the strategy's defaults; proactive: the strategy fills
        # risk_threshold and cost_weight from its own schema defaults;
        # nothing is chosen for the testbed
        return StrategyPolicy(name, scn, trained_bundle, {
            'proposed-reactive': REACTIVE,
            'proposed-cycle': REACTIVE,
            'proposed-proactive': dict(REACTIVE, mode='proactive'),
            'proposed-planned': dict(planned_parameters(scn),
                                     starved_window=0),
            'proposed-reactive-starved': dict(
                REACTIVE, starved_window=STARVED_WINDOW)}.get(name))
    raise ValueError(f'unknown policy {name!r}; known: {", ".join(POLICIES)}')
