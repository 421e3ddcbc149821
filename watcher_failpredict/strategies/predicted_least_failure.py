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

"""The ``predicted_least_failure`` strategy."""

import collections
import dataclasses
import logging
import math
import time

import numpy as np
from oslo_config import cfg
from oslo_log import log
from watcher.decision_engine.strategy.strategies import base

from watcher_failpredict import conf as fp_conf
from watcher_failpredict.datasources import windows as metric_windows
from watcher_failpredict.prediction import baseline_risk
from watcher_failpredict.prediction import feature_sets
from watcher_failpredict.prediction import features
from watcher_failpredict.prediction import migration_time
from watcher_failpredict.prediction import ranking
from watcher_failpredict.strategies import errors
from watcher_failpredict.strategies import migrations
from watcher_failpredict.strategies import move_gate
from watcher_failpredict.strategies import parameters
from watcher_failpredict.strategies import placement
from watcher_failpredict.strategies import planned_mode
from watcher_failpredict.strategies import proactive_mode
from watcher_failpredict.strategies import ranking_check
from watcher_failpredict.strategies import reactive_mode

LOG = log.getLogger(__name__)

#: Host metrics read as their window mean only (see features.py).
MEAN_ONLY = features.MEAN_ONLY_METRICS
CONF = fp_conf.CONF


def _names_and_reasons(reasons, limit=20):
    items = [f'{name} ({why})' for name, why in sorted(reasons.items())]
    if len(items) > limit:
        items = items[:limit] + [f'and {len(items) - limit} more']
    return ', '.join(items)


class PredictedLeastFailure(base.BaseStrategy):
    """Predicted least failure

    *Description*

        Reacts to compute hosts in *failure state*: a host whose mean CPU
        over the last ``period`` seconds is at or above ``threshold``
        percent (the paper's trigger; saturated cores mean the VNFs on it
        can no longer guarantee their performance), and, with
        ``starved_window`` set, a host whose consumers got less than
        ``speed_floor`` of the CPU they ask for over its last seconds (its
        cores over its load average): a 300 s mean lags a load that just
        rose while the chains through the host already time out. From
        each such host
        it live-migrates one VNF (Nova instance) to the feasible host that a
        trained model predicts is least likely to be in failure state
        within its horizon once that VNF's load is added.

        Whether to move and which VNF (``move_rule=queueing``, the
        default; strategies/queueing.py): the host's cores are shared among
        its runnable demand (its load average), so each VNF runs at
        ``g = min(1, cores / load)`` and, busy ``rho = demand / (vCPUs x
        g)`` of the time, holds ``rho / (1 - rho)`` requests (Little's law
        for an M/M/1 queue, continued along its tangent past 0.95), both
        measured over the trigger period (a host relieved because it
        starved: over the last ``starved_window`` seconds). Among
        the host's ACTIVE, unlocked, non-excluded instances that were not
        migrated in the last ``cooldown`` seconds, have metrics and whose
        live migration would converge, the one whose move spares the most
        requests is chosen; it is moved only when what it spares over the
        cooldown (or the model's horizon, the longer) exceeds what the
        migration costs: the copy threads' load on both hosts while it
        runs and the switch-over outage. A failing host whose VNFs barely
        queue is left alone (``moves_not_worth``). A host that just
        received an instance is a source like any other (unless
        ``received_cooldown``): a destination that turns out overloaded is
        relieved of its other instances at once.
        ``move_rule=speed_floor`` keeps the earlier rule: relieve a host
        whose consumers get less than ``speed_floor`` of the CPU they ask
        for, moving its largest consumer (``instance_choice=most_relief``)
        or the cheapest VM whose departure alone ends the overload
        (``cheapest_ending``).

        Where: only hosts that are enabled and up, in the audit scope, not
        the source, with enough free vCPU, RAM and disk under the allocation
        ratios, with fresh metrics, and that would stay below the threshold
        with the VNF. Ranked with the VNF's load added: by predicted risk
        when it is material (more than 0.01 above the safest candidate's),
        then, among the equally safe, by the model's predicted future peak
        CPU (the bundle's peak regressor), lowest first; the CPU now plays
        no part. A classifier calls most hosts safe at p ~ 0, and ranking
        those by CPU now would be the least-CPU-now policy again; the peak
        regressor says which of them stays furthest from the line. Bundles
        without a peak regressor rank by risk, ties by lower CPU now. The
        least-CPU-now host is not chosen when the model sees it about to
        saturate: this is the paper's point. Every planned move updates the
        working model and the metric windows (load subtracted from the
        source, added to the destination) so the next choice sees it.

    *Requirements*

        * collectd on every compute host and in (or for) every VNF, writing
          into InfluxDB; ``[failpredict]`` options set in watcher.conf.
        * A model bundle trained with ``watcher-failpredict train`` at
          ``[failpredict] model_path`` (and its ``model_sha256``). Without a
          usable model the audit fails: there is no silent fallback.
        * At least two compute hosts; live migration possible between them.
        * A model of kind ``gbt_peak_cycle`` also reads each host's CPU one
          load cycle back (the cycles are in the bundle): one more bulk
          read per audit, so the metrics backend must keep a cycle of
          history (a day for a daily cycle). Hosts with no sample there
          are scored with those features missing.

        Proactive mode (``mode: proactive``) also treats as sources the
        hosts whose predicted probability of failure within the horizon is
        at or above ``risk_threshold`` before their CPU crosses the
        threshold, and plans a move only when it passes the cost-benefit
        gate: the expected number of VNFs kept off a failing host (each
        host's risk times its instances, before minus after the move) must
        exceed ``cost_weight`` x estimated migration time / horizon.

        Planned mode (``mode: planned``, the default;
        strategies/planned_mode.py) needs
        collectd's ``load`` plugin and ``planner_history`` seconds of history
        (two of the longest load cycle). It makes two more reads (every
        host's load average at a coarse step, then the load of the hosts it
        weighs and their instances' CPU, together), forecasts each host's
        background and each VNF's demand one cycle back over the next
        ``look_ahead`` seconds (the hosts' background by analogy where
        that fails its check: ``planner_forecast``; where both fail, their
        time envelope within ``forecast_timing_margin`` seconds either
        way, a departure valued on its low and an arrival on its high),
        and plans the moves
        whose value by the queueing model over that forecast exceeds
        their migration and
        switch-over, from any host, failing or not, that the forecast sees
        starved (``speed_floor``);
        while the forecast (and its envelope) it would have made one
        look-ahead ago missed by more than ``forecast_tolerance`` of the
        hosts' cores over any ``period`` of it, or cannot be checked, the
        audit is reactive
        (``planned_on_forecast`` says which decided), its destinations
        ranked by ``fallback_ranking`` (by default their CPU now when
        the forecast failed its check, which says the cycles the model
        learned no longer hold; by the model, checked, when none could be
        checked, as in the first hours of a deployment). Planned mode is
        the default; ``mode: reactive`` with ``starved_window: 0`` is the
        paper's method.

    *Limitations*

        * Planned mode by default: it moves a VNF off a host the forecast
          sees starved before that host crosses the threshold, and needs
          hours of history (``planner_history``) before it plans on its
          forecast; meanwhile, and whenever the forecast misses, the
          reactive rules act on hosts whose mean CPU crossed the
          threshold, as in the paper, or that starved over the last
          ``starved_window`` seconds. After the load's cycles change
          (drift), that is until the new cycles have shown in the history
          and a look-ahead more has checked them, unless the peaks only
          moved by up to ``forecast_timing_margin``: then it plans on the
          forecast's time envelope, which moves only what pays whichever
          way the timing errs and gains less than a right forecast.
        * A live migration's switch-over can hold a request past the
          client's timeout: where the forecast sees a host just below
          ``speed_floor`` and its VNFs barely suffer, one planned move can
          lift the worst response time while the mean stays level
          (doc/source/limitations.rst; a lower ``speed_floor`` trades
          that for fewer moves where they pay).
        * At most one VNF per failing host per audit, ``max_migrations`` in
          all: predictions after a move rest on an additive load model, so
          the next audit (use ``CONTINUOUS`` audits) sees the measured
          effect before moving more.
        * A VNF's load is moved as its CPU and memory; its disk and network
          I/O are not attributed to instances by collectd and stay put.
        * The model scores each host from its own windows; service-chain
          position and SLA are not considered.
        * Hosts with missing or stale metrics, readings outside their
          physical range, or that report 0 vCPUs or 0 MB of memory, are
          skipped (never a source or a destination); the decision engine
          log names them and the ``hosts_skipped`` efficacy indicator
          counts them (``hosts_implausible_metrics`` the garbage ones). A
          VNF whose own readings are garbage is never moved.
        * A failing host is relieved only when a move spares its VNFs'
          requests more than it costs them (``move_rule``). The queueing
          rule holds the present for the cooldown: a host whose VNFs
          suffer a little for hours (a persistent modest overload) is
          left alone, and it needs collectd's ``load`` plugin (without a
          load average it falls back to ``speed_floor``).
        * The model ranks by the load cycles it learned. Reactive mode
          checks its first picks of one look-ahead ago against the
          least-CPU ones (``ranking_check``, strategies/ranking_check.py)
          and ranks by CPU now when they ran busier at three audits; the
          audits are remembered by the decision engine's process, so the
          check needs audits at least every ``period`` and starts over
          after a restart, unless ``record_risk`` wrote them (then it
          reads them back).
    """

    DATASOURCE_METRICS = ['host_cpu_usage', 'instance_cpu_usage',
                          'instance_ram_usage']

    #: the audits the ranking check judges, shared by every audit of the
    #: decision engine's process (the testbed gives each policy its own)
    audit_memory = ranking_check.AuditMemory()

    def __init__(self, config, osc=None, datasource=None, model_bundle=None,
                 migration_history=None, clock=None):
        """Predicted least failure

        :param config: the strategy's configuration (a Struct)
        :param osc: an OpenStackClients instance
        :param datasource: a WindowsDataSource to use instead of the
            InfluxDB one built from ``[failpredict]`` (tests, the testbed)
        :param model_bundle: a :class:`risk_model.RiskModel` (a loaded
            bundle, a baseline ranking) to use instead of the bundle at
            ``[failpredict] model_path``
        :param migration_history: ``callable(since) -> iterable of
            migrations.Migration`` (``since`` in Unix seconds);
            default: Watcher's action table
        :param clock: ``callable() -> Unix seconds``; default time.time
        """
        super().__init__(config, osc)
        self._datasource_backend = datasource
        self.model_bundle = model_bundle
        self.migration_history = migration_history or self._db_migrations
        self.clock = clock or time.time
        self._reset()

    def _reset(self):
        self.bundle = None
        self.params = None
        self.now = None
        self.skipped = {}          # collectd name -> reason
        self.implausible = set()   # hosts skipped for garbage readings
        self.garbage_instances = {}  # instance UUID -> reason
        self.node_names = {}       # node uuid -> collectd name
        self.windows = None        # working ClusterWindows of usable hosts
        self._cpu_of = None        # the windows _cpu_now was computed on
        self._cpu_now = {}
        self.failing = []          # [(node, mean cpu)] at audit time
        self.starved = []          # [(node, recent load)] below threshold
        self.at_risk = []          # [(node, risk)] proactive sources
        self.host_risk = {}        # collectd name -> risk at audit time
        # collectd name -> the model's ranking score at audit time (its
        # predicted peak CPU, or its risk without a peak regressor)
        self.host_score = {}
        self.risk_before = 0.0
        self.moves = []            # [(instance, source, destination)]
        # failing hosts left alone: their VNFs are not starved enough for
        # a move to pay (speed_floor)
        self.moves_not_worth = 0
        # planned mode: whether the plan rests on the forecast, and the
        # hosts' mean forecast error (share of their cores)
        self.planned_on_forecast = None
        self.forecast_share = math.nan
        # what ranks destinations: the bundle, or a ranking by CPU now
        # (planned mode's fallback, or the ranking check), and why
        self.ranking = None
        self.ranking_why = ''
        # the ranking check's ranking_check.Verdict (None: not judged)
        self.ranking_verdict = None
        # planned mode: the verdict its fallback applies when the model
        # ranks there (None: not judged)
        self._fallback_verdict = None
        # {instance UUID: (seconds ago, host it left, host it went to)}
        # within the cooldown: an instance does not go back to the host it
        # left, nor moves while its migration is under way
        self.recently_left = {}

    @classmethod
    def get_name(cls):
        return 'predicted_least_failure'

    @classmethod
    def get_display_name(cls):
        return 'Predicted least failure'

    @classmethod
    def get_translatable_display_name(cls):
        return 'Predicted least failure'

    @classmethod
    def get_goal_name(cls):
        return 'failure_mitigation'

    @classmethod
    def get_config_opts(cls):
        # Watcher's own "datasources" option only accepts the datasources
        # its DataSourceManager knows; ours is built from [failpredict].
        return [
            cfg.ListOpt(
                'datasources', default=None,
                item_type=cfg.types.String(),
                help='Unused by this strategy: metrics are read from the '
                     'InfluxDB configured in [failpredict].'),
            cfg.BoolOpt(
                'check_optimize_metadata', default=False,
                help='Only move instances whose "optimize" metadata is '
                     'true (or unset).'),
        ]

    @classmethod
    def get_schema(cls):
        return parameters.schema()

    # -- injectable collaborators -------------------------------------------

    @property
    def datasource_backend(self):
        if self._datasource_backend is None:
            from watcher_failpredict.datasources import configured
            try:
                self._datasource_backend = configured.datasource(
                    session=lambda: self.osc.session)
            except cfg.ConfigFileValueError as exc:
                # names the option and file, never the value (a refused
                # influxdb_url may embed a password)
                raise errors.MetricsReadFailed(f'cannot read metrics: {exc}')
            except metric_windows.MetricsUnavailable as exc:
                # e.g. no Aetos endpoint in the Keystone catalogue
                raise errors.MetricsReadFailed(f'cannot read metrics: {exc}')
        return self._datasource_backend

    @datasource_backend.setter
    def datasource_backend(self, datasource):
        self._datasource_backend = datasource

    @property
    def compute_model(self):
        """Watcher's cluster data model of the audit scope (see
        ``BaseStrategy.compute_model``), or the one set here.
        """
        return super().compute_model

    @compute_model.setter
    def compute_model(self, model):
        # Watcher's decision engine builds the model from its collectors;
        # the testbed and the benchmarks hand the strategy their own.
        self._compute_model = model

    def _db_migrations(self, since):
        """Live migrations Watcher ran or is running, from its database."""
        return migrations.from_watcher_actions(self.ctx, since, self.clock)

    # -- parameters and model -------------------------------------------------

    def _parameters(self):
        """The audit parameters, checked (``parameters.checked``)."""
        return parameters.checked(self.input_parameters)

    def _load_model(self):
        if self.model_bundle is not None:
            # the ranking check remembers audits per model
            self.model_key = ranking_check.model_key(self.model_bundle)
            return self.model_bundle
        path = CONF.failpredict.model_path
        if not path:
            raise errors.ModelUnavailable(
                'no failure-prediction model configured: set '
                '[failpredict] model_path to a bundle written by '
                '"watcher-failpredict train"')
        # Score through the failpredict_risk scoring engine: the model
        # Watcher's API presents is the one that decides.
        from watcher_failpredict.prediction import bundle
        from watcher_failpredict.scoring import engine
        try:
            model, digest = engine.get_engine().load()
        except bundle.ModelError as exc:
            # its message names the file and the reason
            raise errors.ModelUnavailable(
                f'unusable failure-prediction model: {exc}')
        except OSError as exc:
            raise errors.ModelUnavailable(
                f'unusable failure-prediction model: model bundle {path}: '
                f'{exc}')
        LOG.info('Scoring with engine %s: %s (sha256 %s)', engine.NAME,
                 path, digest)
        self.model_key = ranking_check.model_key(sha256=digest)
        return model

    def _check_model_fits(self, meta, params):
        if meta.get('model_kind') == 'fixed_hosts':
            # The paper's classifier answers "which of the servers I was
            # trained on"; an audit ranks any subset of feasible hosts.
            raise errors.IncompatibleParameters(
                'the configured model is of kind fixed_hosts (the paper\'s '
                'which-server classifier): it only scores the exact host set '
                'it was trained on and serves offline evaluation; train a '
                '"svm" model for audits')
        model_h = meta.get('horizon')
        if params['horizon'] is not None and model_h is not None and \
                int(params['horizon']) != int(model_h):
            raise errors.IncompatibleParameters(
                f'horizon {params["horizon"]} s requested but the model '
                f'predicts {model_h} s ahead; retrain or omit horizon')
        model_g = meta.get('granularity')
        if model_g is not None and int(model_g) != int(params['granularity']):
            raise errors.IncompatibleParameters(
                f'granularity {params["granularity"]} s requested but the '
                f'model was trained on {model_g} s steps')
        for key in ('threshold', 'period'):
            if meta.get(key) is not None and \
                    float(meta[key]) != float(params[key]):
                LOG.warning('Audit %s %s differs from the model\'s %s: its '
                            'risk is the risk of reaching the model\'s '
                            'failure state.', key, params[key], meta[key])

    # -- phases ---------------------------------------------------------------

    def pre_execute(self):
        """Load the model; read every in-scope host's windows (and the
        window means of disk and network I/O) at once.
        """
        LOG.info('Initializing %s', self.get_display_name())
        self._reset()
        model = self.compute_model  # raises when undefined or stale
        # BaseStrategy._pre_execute logs model.to_string() eagerly: the XML
        # is built even with debug logging off (~1.5 s at 1,000 nodes).
        # Build it only when debug logging would show it.
        if LOG.isEnabledFor(logging.DEBUG):
            LOG.debug(model.to_string())
        self.params = params = self._parameters()
        self.bundle = self._load_model()
        meta = dict(self.bundle.metadata)
        self._check_model_fits(meta, params)
        self.now = float(self.clock())
        gran = int(params['granularity'])
        self.length = max(int(meta.get('window') or 0), int(params['period']))
        self.period_steps = max(int(params['period']) // gran, 1)
        #: steps of the latest metrics that say how starved a host is now
        self.recent_steps = min(max(
            int(params['starved_window']) // gran, 1), self.period_steps) \
            if params['starved_window'] else self.period_steps

        ds = self.datasource_backend
        # every metric read of this audit shares one deadline
        # ([failpredict] metrics_read_deadline), ended in execute()
        ds.start_read_deadline()
        nodes = model.get_all_compute_nodes()
        self.node_names = {u: ds.collectd_host(n.hostname)
                           for u, n in nodes.items()}
        names = tuple(dict.fromkeys(self.node_names.values()))
        if not names:
            raise errors.NoEvaluableHost('no compute host in the audit scope')
        window_s = int(meta.get('window') or self.length)
        try:
            win = ds.cluster_windows(metric_windows.COMPUTE_NODE, names,
                                     self.length, gran, metrics=tuple(
                                         m for m in metric_windows.HOST_METRICS
                                         if m not in MEAN_ONLY),
                                     end=self.now)
            # The model sees these only as their mean over its window: the
            # datasource may compute it server-side, far cheaper than the
            # raw counter samples (InfluxDB: half of the host read).
            means = ds.cluster_means(metric_windows.COMPUTE_NODE, names,
                                     window_s, gran, MEAN_ONLY,
                                     end=self.now)
        except metric_windows.MetricsUnavailable as exc:
            raise errors.MetricsReadFailed(f'cannot read host metrics: {exc}')
        steps = win.times.size
        win = dataclasses.replace(win, data=dict(win.data, **{
            m: np.repeat(np.asarray(means[m], dtype=float)[:, None], steps,
                         axis=1) for m in MEAN_ONLY}))
        if meta.get('feature_set') == 'cyclic':
            win = self._with_last_cycle(ds, win, gran)
        self._evaluate_hosts(win)
        if params['ranking_check']:
            self._check_ranking()

    def _check_ranking(self):
        """Reactive mode: rank by CPU now when the model's first picks of
        one look-ahead ago ran busier than least-CPU's (ranking_check);
        planned mode: judge the same for its fallback, should the model
        rank there; then remember this audit for the checks to come.
        """
        params = self.params
        span = planned_mode.look_ahead_seconds(params)
        spacing = float(params['period'])
        key = ranking_check.memory_key(self.model_key, params)
        keep = ranking_check.keep_seconds(span, spacing)
        memory = self.audit_memory
        if params['mode'] == parameters.REACTIVE:
            verdict = ranking_check.judge(memory.recall(key, self.now),
                                          self.now, span, spacing)
            if verdict is None:
                verdict = self._judge_recorded(key, span, spacing, keep)
            self.ranking_verdict = verdict
            if verdict is None:
                LOG.info('The model\'s ranking is not checked: fewer than '
                         '%d audits remembered %.0f s ago, %s s apart, with '
                         'audits after them (ranking_check needs audits at '
                         'least every %s s; the memory starts empty with '
                         'the decision engine)', ranking_check.DECISIONS,
                         span, params['period'], params['period'])
            elif ranking_check.model_lost(verdict):
                self.ranking = self._ranking_lost(verdict, span)
                LOG.warning('Destinations ranked by mean CPU over the last '
                            '%s s with the VNF, not by the model: %s (its '
                            'load cycles may have changed: retrain it)',
                            params['period'], self.ranking_why)
            else:
                LOG.info('The model\'s ranking checked: its first picks at '
                         'the %d audits from %.0f s ago ran at %.1f %% CPU '
                         'since, least-CPU\'s at %.1f %%', verdict.judged,
                         span,
                         verdict.model_cpu, verdict.least_cpu)
        elif params['mode'] == parameters.PLANNED:
            # from this process's memory alone: a planned audit makes its 8
            # requests already, and the read-back would be a ninth
            self._fallback_verdict = ranking_check.judge(
                memory.recall(key, self.now), self.now, span, spacing)
        memory.remember(key, self.now, self.host_score, {
            n: self.host_cpu[n] for n in self.host_score}, keep)

    def _ranking_lost(self, verdict, span):
        """The ranking by CPU now that replaces a model whose first picks
        ran busier than least-CPU's (``verdict``, audits ``span`` s ago).
        """
        return self._cpu_now_ranking(
            f'the ranking check: the model\'s first picks at the '
            f'{verdict.judged} audits from {span:.0f} s ago ran at '
            f'{verdict.model_cpu:.1f} % CPU since, least-CPU\'s at '
            f'{verdict.least_cpu:.1f} %')

    def _judge_recorded(self, key, span, spacing, keep):
        """The ranking check on the audits ``[failpredict] record_risk``
        wrote, when this process does not remember enough of them (a
        restarted decision engine, several engines sharing the audits):
        read back in one request and merged into the memory. None when
        recording is off, the model is not a file, or still too few;
        ``keep``: the seconds of audits the memory keeps.
        """
        tag = ranking_check.record_tag(key)
        if not CONF.failpredict.record_risk or tag is None:
            return None
        from watcher_failpredict.datasources import risk_recorder as rr
        try:
            recorded = rr.RiskRecorder().audits(
                tag, self.now - keep, self.now,
                deadline=self.datasource_backend.current_deadline())
        except (metric_windows.MetricsUnavailable, ValueError) as exc:
            LOG.warning('The ranking check cannot read the audits recorded '
                        'in %s ([failpredict] record_risk): %s', rr.RISK,
                        exc)
            return None
        added = self.audit_memory.merge(key, recorded, self.now, keep)
        if not added:
            return None
        LOG.info('The ranking check read %d audits of this model back from '
                 '%s ([failpredict] record_risk)', added, rr.RISK)
        return ranking_check.judge(self.audit_memory.recall(key, self.now),
                                   self.now, span, spacing)

    def _cpu_now_ranking(self, why):
        """The ranking by mean CPU over ``period`` with the VNF's load
        added, used instead of the model's for the reason ``why`` (logged
        with the destinations).
        """
        self.ranking_why = why
        return baseline_risk.CurrentCpuRisk({
            'period': int(self.params['period']),
            'granularity': int(self.params['granularity'])})

    def _with_last_cycle(self, ds, win, gran):
        """``win`` plus each host's CPU one load cycle earlier, shifted
        forward by the horizon (``feature_sets.LAST_CYCLE``), for a model
        trained on the cyclic features: one more bulk read, whatever the
        number of hosts, spanning every host's cycle at once.
        """
        params = self.bundle.metadata['feature_params']
        lags = feature_sets.host_lags(params, win.names, gran)
        last = np.full(win.data['cpu'].shape, np.nan)
        known = lags > 0
        if not known.all():
            LOG.info('The model knows no load cycle for hosts %s: their '
                     'last-cycle features count as missing',
                     _names_and_reasons({n: 'no cycle' for n, k in zip(
                         win.names, known) if not k}))
        if known.any():
            lo, hi = float(lags[known].min()), float(lags[known].max())
            n = win.times.size
            spread = int(round((hi - lo) / gran))
            if n + spread > parameters.MAX_WINDOW_STEPS:
                raise errors.IncompatibleParameters(
                    f'the model\'s host cycles run from {lo:g} to {hi:g} s '
                    f'behind the horizon: reading them at once would take '
                    f'{n + spread} steps per host, more than '
                    f'{parameters.MAX_WINDOW_STEPS}; retrain with one '
                    f'declared cycle (train --cycle)')
            names = tuple(np.asarray(win.names)[known])
            try:
                back = ds.cluster_windows(
                    metric_windows.COMPUTE_NODE, names, self.length +
                    int(hi - lo), gran, metrics=('cpu',), end=self.now - lo)
            except metric_windows.MetricsUnavailable as exc:
                raise errors.MetricsReadFailed(
                    f'cannot read the hosts\' last load cycle: {exc}')
            cpu = back.data['cpu']
            for name in names:
                i = win.index(name)
                off = int(round((hi - lags[i]) / gran))
                last[i] = cpu[back.index(name), off:off + n]
            # garbage one cycle ago is a lost sample, not a load: the
            # host's own windows are judged (and skipped) by their own
            garbage = metric_windows.implausible_reasons(
                dataclasses.replace(win, data={'cpu': last}),
                metric_windows.COMPUTE_NODE)
            if garbage:
                lo_ok, hi_ok = metric_windows.PHYSICAL_RANGES[
                    metric_windows.COMPUTE_NODE]['cpu']
                tol = metric_windows.RANGE_TOLERANCE
                with np.errstate(invalid='ignore'):
                    last[(last < lo_ok - tol) | (last > hi_ok + tol)] = np.nan
                LOG.warning('Readings one load cycle ago ignored as '
                            'missing: %s', _names_and_reasons(garbage))
            empty = {nm: 'no sample' for nm in names
                     if np.isnan(last[win.index(nm)]).all()}
            if empty:
                LOG.info('No sample one load cycle ago for hosts %s (a '
                         'younger history): their last-cycle features '
                         'count as missing', _names_and_reasons(empty))
        return dataclasses.replace(win, data=dict(
            win.data, **{feature_sets.LAST_CYCLE: last}))

    def _evaluate_hosts(self, win):
        mean_cpu = placement.period_mean(win.data['cpu'], self.period_steps)
        self.host_cpu = dict(zip(win.names, mean_cpu.tolist()))
        max_age = CONF.failpredict.metrics_max_age
        no_capacity = {}
        for uuid, node in self.compute_model.get_all_compute_nodes().items():
            why = placement.capacity_skip_reason(node)
            if why:
                no_capacity[self.node_names[uuid]] = why
        # garbage must never read as a load: clipped, an idle reading of
        # 250 % would make the host look idle, the best destination
        garbage = metric_windows.implausible_reasons(
            win, metric_windows.COMPUTE_NODE)
        self.implausible = set(garbage)
        usable = []
        for i, name in enumerate(win.names):
            why = no_capacity.get(name) or garbage.get(name) or \
                placement.host_skip_reason(win.last_seen[i], mean_cpu[i],
                                           self.now, max_age)
            if why:
                self.skipped[name] = why
            else:
                usable.append(name)
        risks = scores = np.array([])
        if usable:
            risks, peaks = self.bundle.predict_risk_and_peak(
                win.subset(usable))
            risks = np.asarray(risks, dtype=float)
            scores = risks if peaks is None else np.asarray(peaks, float)
            for name, risk in zip(list(usable), risks):
                if np.isnan(risk):
                    self.skipped[name] = 'the model could not score it'
        if self.skipped:
            LOG.warning('Hosts skipped (never a source nor a destination): '
                        '%s', _names_and_reasons(self.skipped, limit=10**6))
        kept = [n for n in usable if n not in self.skipped]
        if not kept:
            raise errors.NoEvaluableHost(
                'no host can be evaluated: ' +
                _names_and_reasons(self.skipped))
        self.windows = win.subset(kept)
        self.host_risk = {n: float(r) for n, r in zip(usable, risks)}
        self.host_score = {n: float(v) for n, v in zip(usable, scores)
                           if n not in self.skipped}
        self.risk_before = placement.expected_failing_hosts(risks)

    def _host_cpu(self, name):
        """Mean CPU of ``name`` over the trigger period, in the working
        windows (which change with every planned move).
        """
        if self._cpu_of is not self.windows:
            means = placement.period_mean(self.windows.data['cpu'],
                                          self.period_steps)
            self._cpu_now = dict(zip(self.windows.names, means.tolist()))
            self._cpu_of = self.windows
        return self._cpu_now[name]

    def _cpu_with(self, name, added_cpu):
        """Mean CPU of ``name`` over the trigger period once ``added_cpu``
        (per step) is added to its working windows, as they will be.
        """
        return placement.period_mean_with(self.windows.series('cpu', name),
                                          added_cpu, self.period_steps)

    def do_execute(self, audit=None):
        params = self.params
        threshold = float(params['threshold'])
        model = self.compute_model
        usable = set(self.windows.names)
        nodes = model.get_all_compute_nodes()
        failing, starved = [], []
        for uuid, node in nodes.items():
            name = self.node_names[uuid]
            if name in usable:
                cpu = self._host_cpu(name)
                if placement.is_failing(cpu, threshold):
                    failing.append((node, cpu))
                elif self._starved_now(node):
                    starved.append((node, self._load_average(
                        node, self.recent_steps)))
        failing.sort(key=lambda nc: (-nc[1], nc[0].hostname))
        starved.sort(key=lambda nl: (-nl[1] / nl[0].vcpus, nl[0].hostname))
        self.failing = failing
        self.starved = starved
        self.at_risk = at_risk = proactive_mode.at_risk_hosts(
            self, failing + starved)
        if params['mode'] == parameters.PLANNED and self._planned():
            return self.solution
        if not failing and not at_risk and not starved:
            LOG.info('No host in failure state (mean CPU >= %s %% over %s '
                     's)%s', threshold, params['period'],
                     ' nor at risk (predicted risk >= %s)'
                     % params['risk_threshold'] if self._proactive else '')
            return self.solution
        if failing:
            LOG.info('Hosts in failure state: %s', ', '.join(
                f'{n.hostname} ({c:.1f} %)' for n, c in failing))
        if starved:
            LOG.info('Hosts starved over the last %s s, relieved before '
                     'the threshold (their consumers got less than '
                     'speed_floor %.0f %% of the CPU they ask for): %s',
                     self.recent_steps * int(params['granularity']),
                     100 * float(params['speed_floor']), ', '.join(
                         f'{n.hostname} (load {d:.1f} on {n.vcpus} cores)'
                         for n, d in starved))
        if at_risk:
            LOG.info('Hosts at risk (predicted risk >= %s before the CPU '
                     'threshold): %s', params['risk_threshold'], ', '.join(
                         f'{n.hostname} ({r:.3f})' for n, r in at_risk))

        self.recently_left, recent_dest = migrations.recent(
            self.migration_history, self.now, params['cooldown'],
            params['received_cooldown'])
        sources = []
        for node, _ in failing + starved + at_risk:
            got = recent_dest.get(node.hostname)
            if got is not None:
                LOG.info('Host %s not used as a source: it received '
                         'instance %s %.0f s ago (received_cooldown %s s)',
                         node.hostname, got[1], got[0],
                         params['received_cooldown'])
                continue
            sources.append(node)

        cands = self._movable_instances(sources, self.recently_left)
        if params['move_rule'] == 'queueing' and not self._proactive:
            # the VNFs that stay share the source's cores too
            read = [i for s in sources
                    for i in self.compute_model.get_node_instances(s)]
        else:
            read = [i for insts in cands.values() for i in insts]
        inst_win = self._instance_windows(read)
        for source in sources:
            if len(self.moves) >= int(params['max_migrations']):
                LOG.info('max_migrations (%s) reached',
                         params['max_migrations'])
                break
            if self._proactive:
                proactive_mode.relieve(self, source, cands[source.uuid],
                                       inst_win, threshold)
            else:
                reactive_mode.ReactiveRelief(self).relieve(
                    source, cands[source.uuid], inst_win, threshold)
        return self.solution

    def _planned(self):
        """Planned mode: plan on the forecast; False (logged) when it
        cannot be trusted and the reactive rules decide instead.
        """
        audit = planned_mode.PlannedAudit(self)
        try:
            audit.decide()
            self.planned_on_forecast = True
        except planned_mode.HistoryUnreadable as exc:
            raise errors.MetricsReadFailed(str(exc))
        except planned_mode.FellBack as exc:
            self.planned_on_forecast = False
            LOG.warning('Planned mode falls back to the reactive rules: %s',
                        exc)
            self.ranking = self._fallback_ranking(exc.forecast_missed)
        finally:
            self.forecast_share = audit.share
        return self.planned_on_forecast

    def _fallback_ranking(self, forecast_missed):
        """The ranking planned mode's reactive fallback uses (None: the
        trained model's).

        :param forecast_missed: the forecast failed its check (its cycles
            changed), rather than none could be checked (a history too
            short, the first hours of a deployment)
        """
        if forecast_missed and \
                self.params['fallback_ranking'] == parameters.CURRENT_CPU:
            LOG.info('The fallback ranks destinations by their mean CPU '
                     'over the last %s s with the VNF (fallback_ranking '
                     '%s): the trained model ranks by cycles the forecast '
                     'check says no longer hold', self.params['period'],
                     parameters.CURRENT_CPU)
            return self._cpu_now_ranking('planned mode\'s fallback_ranking')
        verdict = self._fallback_verdict
        if verdict is not None:
            self.ranking_verdict = verdict
            if ranking_check.model_lost(verdict):
                ranking = self._ranking_lost(
                    verdict, planned_mode.look_ahead_seconds(self.params))
                LOG.warning('The fallback ranks destinations by mean CPU '
                            'over the last %s s with the VNF, not by the '
                            'model: %s', self.params['period'],
                            self.ranking_why)
                return ranking
        LOG.info('The fallback ranks destinations by the trained model%s',
                 ' (fallback_ranking model)' if forecast_missed else
                 ': no forecast was checked to say its cycles changed')
        return None

    @property
    def _proactive(self):
        return self.params.get('mode') == parameters.PROACTIVE

    def _model_horizon(self):
        meta = self.bundle.metadata
        h = meta.get('horizon') or self.params.get('horizon')
        return float(h) if h else None

    def _estimate_migration(self, inst, cpu_series, mem_series):
        """Estimated live migration of ``inst`` from its recent windows,
        warning when the model's horizon does not cover it.
        """
        est = migration_time.estimate_instance(
            inst.memory, cpu_series[-self.period_steps:],
            mem_series[-self.period_steps:],
            int(self.params['granularity']), CONF.failpredict)
        horizon = self._model_horizon()
        need = migration_time.required_horizon(
            [est], CONF.failpredict.migration_margin)
        if not est.converges:
            LOG.warning('Live migration of %s may not complete: %s',
                        inst.uuid, est.reason)
        elif horizon is not None and horizon < need:
            LOG.warning('The model predicts %.0f s ahead but migrating %s '
                        'takes about %.0f s (+ %.0f s margin = %.0f s): the '
                        'destination is judged on its state before the '
                        'migration completes; retrain with horizon >= '
                        '%.0f s', horizon, inst.uuid, est.seconds,
                        CONF.failpredict.migration_margin, need, need)
        return est

    def _movable_instances(self, sources, recently_left):
        model = self.compute_model
        out = {}
        for source in sources:
            insts = model.get_node_instances(source)
            tagged = {i.uuid for i in self._audit_tag_filter(insts)}
            ok = []
            for inst in sorted(insts, key=lambda i: i.uuid):
                why = placement.instance_skip_reason(inst) or \
                    placement.under_way_reason(inst.uuid, source.hostname,
                                               recently_left)
                if why is None and inst.uuid not in tagged:
                    why = 'its "optimize" metadata is false'
                if why:
                    LOG.debug('Instance %s on %s not a candidate: %s',
                              inst.uuid, source.hostname, why)
                else:
                    ok.append(inst)
            out[source.uuid] = ok
        return out

    def _audit_tag_filter(self, instances):
        if not getattr(self.config, 'check_optimize_metadata', False):
            return instances
        return self.filter_instances_by_audit_tag(instances)

    def _instance_windows(self, instances):
        if not instances:
            return None
        try:
            win = self.datasource_backend.cluster_windows(
                metric_windows.INSTANCE, tuple(i.uuid for i in instances),
                self.length, int(self.params['granularity']),
                metrics=('cpu', 'memory'), end=self.now)
        except metric_windows.MetricsUnavailable as exc:
            raise errors.MetricsReadFailed(
                f'cannot read instance metrics: {exc}')
        if win.times.shape != self.windows.times.shape:
            raise errors.MetricsReadFailed(
                f'instance windows have {win.times.size} steps, host '
                f'windows {self.windows.times.size}: cannot move load')
        if getattr(self.datasource_backend, 'instance_cpu_per_vcpu', False):
            # collectd's virt plugin measures CPU time, i.e. percent of ONE
            # vCPU; the rest of the strategy works in percent of the
            # instance's vCPUs.
            vcpus = np.array([max(int(i.vcpus or 1), 1) for i in instances],
                             dtype=float)
            win = dataclasses.replace(win, data=dict(
                win.data, cpu=win.data['cpu'] / vcpus[:, None]))
        self.garbage_instances = metric_windows.implausible_reasons(
            win, metric_windows.INSTANCE)
        return win

    def _instance_load(self, inst, inst_win, source):
        """``(cpu, memory, mean cpu over the period)`` of a candidate VNF,
        or None (logged) when it has no CPU metrics to judge it by.
        """
        garbage = self.garbage_instances.get(inst.uuid)
        if garbage:
            LOG.warning('Instance %s on %s not a candidate: %s; its load '
                        'cannot be judged', inst.uuid, source.hostname,
                        garbage)
            return None
        cpu = inst_win.series('cpu', inst.uuid)
        cpu_mean = float(placement.period_mean(cpu, self.period_steps))
        if np.isnan(cpu_mean):
            LOG.info('Instance %s on %s not a candidate: no CPU metrics in '
                     'the last %s s', inst.uuid, source.hostname,
                     self.params['period'])
            return None
        mem = inst_win.series('memory', inst.uuid)
        if np.isnan(mem).all():
            # No guest memory samples: assume it uses its whole flavor.
            mem = np.full_like(mem, float(inst.memory))
        return cpu, mem, cpu_mean

    def _speed(self, node):
        """Share of the CPU its consumers ask for that ``node`` gives them
        over the trigger period (move_gate.consumer_speed); NaN without
        load samples.
        """
        return move_gate.consumer_speed(self._load_period(node), node.vcpus)

    def _load_period(self, node):
        """A host's load average (runnable demand, cores) over the
        trigger period, in the working windows; empty without samples.
        """
        if 'load' not in self.windows.data:
            return np.array([])
        return self.windows.series(
            'load', self.node_names[node.uuid])[-self.period_steps:]

    def _starved_enough(self, source):
        """The whether-to-move gate of a failing host (``speed_floor``);
        logs and counts a refusal.
        """
        floor = float(self.params['speed_floor'])
        if floor >= 1.0:
            return True
        speed = self._speed(source)
        if move_gate.worth_moving(speed, floor):
            if np.isnan(speed):
                LOG.warning('Host %s reports no load average: whether '
                            'moving a VNF off it pays cannot be weighed; '
                            'moving as the threshold says', source.hostname)
            return True
        self._count_not_worth(source)
        LOG.info('Host %s is %s but its consumers get %.0f %% of the CPU '
                 'they ask for (speed_floor %.0f %%): its VNFs are barely '
                 'slowed and a migration would cost them more; no move',
                 source.hostname, self._why_source(source), 100 * speed,
                 100 * floor)
        return False

    def _load_average(self, node, steps):
        """A host's runnable demand (cores): its load average's mean over
        the last ``steps``; NaN without samples.
        """
        load = self._load_period(node)
        return float(placement.period_mean(load, steps)) \
            if load.size else math.nan

    def _plan_move(self, inst, source, dest, cpu_series, mem_series):
        """Add the migrate action and move the VNF's load in the working
        model and windows.
        """
        src_name = self.node_names[source.uuid]
        dst_name = self.node_names[dest.uuid]
        self.compute_model.migrate_instance(inst, source, dest)
        self.add_action_migrate(inst, 'live', source, dest)
        w = self.windows
        leaving = placement.moved_load(inst, cpu_series, mem_series, source)
        w = placement.add_to_rows(w, {k: -v for k, v in leaving.items()},
                                  rows=[w.index(src_name)])
        w = placement.add_to_rows(
            w, placement.moved_load(inst, cpu_series, mem_series, dest),
            rows=[w.index(dst_name)])
        self.windows = placement.clip_nonnegative(w, placement.MOVED_METRICS)
        self.moves.append((inst, source, dest))

    def _why_source(self, source):
        for node, cpu in self.failing:
            if node.uuid == source.uuid:
                return f'failing ({cpu:.1f} %)'
        for node, load in self.starved:
            if node.uuid == source.uuid:
                return f'starved (load {load:.1f})'
        return 'at risk'

    def _is_failing(self, node):
        """Whether ``node`` is in failure state (by its mean CPU over the
        trigger period) at this audit.
        """
        return any(n.uuid == node.uuid for n, _ in self.failing)

    def _count_not_worth(self, source):
        """Count a host in failure state left alone (moves_not_worth);
        a starved host below the threshold is not one.
        """
        if self._is_failing(source):
            self.moves_not_worth += 1

    def _starved_now(self, node):
        """Whether ``node``'s consumers got less than ``speed_floor`` of
        the CPU they ask for over the last ``starved_window`` seconds (off
        when it is 0, or ``speed_floor`` is 1 and any queue would do).
        """
        floor = float(self.params['speed_floor'])
        if not self.params['starved_window'] or floor >= 1.0:
            return False
        load = self._load_period(node)[-self.recent_steps:]
        speed = move_gate.consumer_speed(load, node.vcpus)
        return not np.isnan(speed) and speed < floor

    def _risk_and_peak(self, windows):
        """Predicted risk and future peak CPU per host of ``windows``; the
        peak is None when the model has no peak regressor (older bundles,
        the baseline rankings).
        """
        risk, peak = (self.ranking or self.bundle).predict_risk_and_peak(
            windows)
        return (np.asarray(risk, dtype=float),
                None if peak is None else np.asarray(peak, dtype=float))

    def _feasible_destinations(self, source, inst, cpu_series, mem_series,
                               threshold):
        """``(nodes, loads)``: the hosts that can take ``inst`` from
        ``source`` and the load it would add to each; every rejection is
        logged with its reason.
        """
        model = self.compute_model
        usable = set(self.windows.names)
        rejected = collections.Counter()
        feasible, added = [], []
        for uuid, node in sorted(model.get_all_compute_nodes().items(),
                                 key=lambda kv: kv[1].hostname):
            name = self.node_names[uuid]
            skip = self.skipped.get(name)
            if skip is None and name not in usable:
                skip = 'no metrics'
            # cheapest checks first: Watcher's free-resource arithmetic
            # walks the node's instances, so it runs last
            why = placement.destination_state_reason(node, source, skip) \
                or placement.return_reason(inst.uuid, node.hostname,
                                           self.recently_left)
            load = None
            if why is None:
                load = placement.moved_load(inst, cpu_series, mem_series,
                                            node)
                cpu_after = self._cpu_with(name, load['cpu'])
                if placement.is_failing(cpu_after, threshold):
                    why = (f'would be in failure state with it '
                           f'({cpu_after:.1f} %)')
            if why is None:
                why = placement.capacity_reason(
                    inst, model.get_node_free_resources(node))
            if why:
                rejected[why.split(':')[0]] += 1
                LOG.debug('Host %s rejected as destination of %s: %s',
                          node.hostname, inst.uuid, why)
            else:
                feasible.append(node)
                added.append(load)
        if not feasible:
            LOG.warning('No feasible destination for instance %s from %s '
                        '(rejections: %s)', inst.uuid, source.hostname,
                        dict(rejected))
        return feasible, added

    def _best_destination(self, source, inst, cpu_series, mem_series,
                          threshold, max_risk=None):
        """The least risky feasible destination as ``(node, risk with
        the VNF)``, or None. ``max_risk``: destinations predicted at or
        above it are refused (proactive mode).
        """
        feasible, added = self._feasible_destinations(
            source, inst, cpu_series, mem_series, threshold)
        if not feasible:
            return None
        names = [self.node_names[n.uuid] for n in feasible]
        cand = self.windows.subset(names)
        cand = placement.add_to_rows(cand, {
            metric: np.stack([load[metric] for load in added])
            for metric in placement.MOVED_METRICS})
        risks, peaks = self._risk_and_peak(cand)
        ranked = placement.rank_destinations(
            names, risks, [self._host_cpu(n) for n in names], peaks)
        if not ranked:
            LOG.warning('The model could not score any destination of %s',
                        inst.uuid)
            return None
        if peaks is not None:
            LOG.info('Destinations of %s by predicted risk: %s (risk to '
                     'within %s first, then the predicted peak CPU with it)',
                     inst.uuid, ', '.join(
                         f'{r.name} {r.risk:.3f} (peak {r.peak:.1f} %)'
                         for r in ranked[:5]), ranking.RISK_TOLERANCE)
        elif self.ranking is not None:
            LOG.info('Destinations of %s by mean CPU over the period with '
                     'it (%s): %s', inst.uuid, self.ranking_why,
                     ', '.join(f'{r.name} {100 * r.risk:.1f} %'
                               for r in ranked[:5]))
        else:
            LOG.info('Destinations of %s by predicted risk: %s (the model '
                     'has no peak regressor: ties by lower CPU now)',
                     inst.uuid, ', '.join(
                         f'{r.name} {r.risk:.3f} (CPU now {r.cpu_now:.1f} %)'
                         for r in ranked[:5]))
        if max_risk is not None:
            ranked = [r for r in ranked
                      if not placement.is_at_risk(r.risk, max_risk)]
            if not ranked:
                LOG.warning('No destination of %s stays below '
                            'risk_threshold %s with it', inst.uuid, max_risk)
                return None
        by_name = {self.node_names[n.uuid]: n for n in feasible}
        return by_name[ranked[0].name], ranked[0].risk

    def execute(self, audit=None):
        # post_execute is called without the audit; record_risk tags its
        # points with the audit's UUID.
        self.audit_uuid = getattr(audit, 'uuid', None)
        # Watcher builds a strategy per audit: a datasource it built for
        # itself (not one injected) is closed with the audit, connections
        # and query thread included, whether the audit succeeds or fails.
        owned = self._datasource_backend is None
        try:
            return super().execute(audit=audit)
        finally:
            if self._datasource_backend is not None:
                self._datasource_backend.end_read_deadline()
            if owned and self._datasource_backend is not None:
                self._datasource_backend.close()

    def _record_risk(self):
        """Opt-in ([failpredict] record_risk): write every evaluated host's
        risk and the planned moves to InfluxDB; never fails the audit.
        """
        from watcher_failpredict.datasources import risk_recorder as rr
        try:
            threshold = float(self.params['threshold'])
            cpus = getattr(self, 'host_cpu', {})
            hosts = []
            scores = getattr(self, 'host_score', {})
            for name, risk in sorted(getattr(self, 'host_risk', {}).items()):
                cpu = cpus.get(name, float('nan'))  # NaN is never failing
                hosts.append(rr.HostRisk(name, risk, cpu, bool(
                    placement.is_failing(cpu, threshold)), scores.get(
                        name, float('nan'))))
            # the ranking check reads them back by this tag
            key = getattr(self, 'model_key', None)
            model = key and ranking_check.record_tag(
                ranking_check.memory_key(key, self.params))
            moves = [rr.Move(inst.uuid, self.node_names[src.uuid],
                             self.node_names[dst.uuid])
                     for inst, src, dst in self.moves]
        except Exception as exc:  # observability never fails the audit
            LOG.warning('Cannot record the predicted risks: %s', exc)
            return
        rr.record_audit(getattr(self, 'audit_uuid', None) or 'none',
                        self.now, hosts, moves, model=model)

    def post_execute(self):
        threshold = float(self.params['threshold'])
        relieved = sum(
            1 for node, _ in self.failing
            if self._host_cpu(self.node_names[node.uuid]) < threshold)
        risk_after = self.risk_before
        if self.moves:
            risk_after = placement.expected_failing_hosts(
                self.bundle.predict_risk(self.windows))
        indicators = dict(
            hosts_in_failure=len(self.failing),
            hosts_relieved=int(relieved),
            migrations_planned=len(self.moves),
            cluster_risk_before=float(self.risk_before),
            cluster_risk_after=float(risk_after),
            hosts_skipped=len(self.skipped),
            hosts_implausible_metrics=len(self.implausible),
            moves_not_worth=int(self.moves_not_worth),
        )
        if self.params['starved_window']:
            indicators['hosts_starved'] = len(self.starved)
        if self.planned_on_forecast is not None:
            indicators['planned_on_forecast'] = int(self.planned_on_forecast)
        if self.ranking_verdict is not None:
            indicators['ranked_by_model'] = int(
                not ranking_check.model_lost(self.ranking_verdict))
        if np.isfinite(self.forecast_share):
            indicators['forecast_error'] = 100.0 * float(self.forecast_share)
        self.solution.set_efficacy_indicators(**indicators)
        LOG.info('%s: %s', self.get_display_name(), ', '.join(
            f'{k}={v:g}' if isinstance(v, float) else f'{k}={v}'
            for k, v in indicators.items()))
        if CONF.failpredict.record_risk:
            self._record_risk()
