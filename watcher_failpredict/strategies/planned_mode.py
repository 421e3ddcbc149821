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

"""One audit of ``predicted_least_failure``'s planned mode (issue 11).

The reactive rules act on the present: a host whose CPU crossed the
threshold, a move valued with the load held as it is now. The planned
mode values every allowed move over a forecast of the coming look-ahead
(:mod:`strategies.stay_planner`) and plans the ones that pay, whether a
host is failing now or not, off hosts the forecast sees starved (the
reactive gate's ``speed_floor``), but only while the forecast has been
right
(:mod:`strategies.load_forecast`): otherwise the audit is the reactive
mode's, and the log and the efficacy indicators say which decided and
why.

It makes two more reads per audit, whatever the number of hosts, over
``planner_history`` seconds: every in-scope host's load average at a
coarse step, to choose the hosts it weighs; then their load average and
their instances' CPU at ``planner_granularity``, together in one request
where the backend can
(:meth:`~.base.WindowsDataSource.cluster_windows_together`).
"""

import math

import numpy as np
from oslo_log import log
from watcher.common import exception

from watcher_failpredict.datasources import windows as metric_windows
from watcher_failpredict.strategies import forecast_inputs
from watcher_failpredict.strategies import load_forecast
from watcher_failpredict.strategies import migrations
from watcher_failpredict.strategies import move_gate
from watcher_failpredict.strategies import placement
from watcher_failpredict.strategies import stay_planner

LOG = log.getLogger(__name__)

#: The hosts a plan weighs: those whose load the forecast sees highest,
#: and those it sees with the most room, chosen on the hosts' load
#: averages before any VNF's history is read. A cluster of at most 24
#: hosts is weighed whole; a larger one's read of VNF history stays under
#: the datasource's name filter (NAME_FILTER_LIMIT, 500 names: 24 hosts
#: of 20 VNFs), and a greedy round values a few thousand moves.
PLANNER_SOURCES = 12
PLANNER_DESTINATIONS = 12
#: Seconds per step (at least the planner's) of the hosts' load read to
#: choose them.
COARSE_STEP = 60


#: How the log names the forecast planned on.
_NAMES = {load_forecast.SEASONAL: 'seasonal forecast',
          load_forecast.ANALOG: 'analog forecast (its cycles changed pace or '
                                'phase)',
          load_forecast.ENVELOPE: 'time envelope of the {} forecast within '
                                  '{:.0f} s either way (its cycles changed: '
                                  'its peaks may come early or late)'}


class FellBack(Exception):
    """The forecast cannot be planned on; the message says why.

    ``forecast_missed``: the forecast failed its check, which says the
    load's cycles changed; False when no forecast could be checked (a
    history too short, fewer than two hosts with one, no instance).
    """

    def __init__(self, message, forecast_missed=False):
        super().__init__(message)
        self.forecast_missed = forecast_missed


class HistoryUnreadable(Exception):
    """The metrics backend could not serve the planner's history."""


class PlannedAudit:
    """The planned decision of one audit of ``strategy`` (its parameters,
    working model and windows set by ``pre_execute``).
    """

    def __init__(self, strategy):
        self.s = strategy
        p = strategy.params
        self.step = int(p['planner_granularity'] or p['granularity'])
        self.look_ahead = look_ahead_seconds(p)
        self.steps = int(math.ceil(self.look_ahead / self.step))
        self.period = max(int(p['period']) // self.step, 1)
        margin = p['forecast_timing_margin']
        #: the envelope's margin in steps (0: none)
        self.margin = int(round(float(
            p['period'] if margin is None else margin) / self.step))
        #: the hosts' mean forecast error (share of cores), NaN unknown
        self.share = math.nan

    def decide(self):
        """Plan on the forecast; FellBack when it cannot be trusted."""
        s, p = self.s, self.s.params
        node_of = {s.node_names[u]: n for u, n in
                   s.compute_model.get_all_compute_nodes().items()}
        on_host = {n: sorted(s.compute_model.get_node_instances(node_of[n]),
                             key=lambda i: i.uuid) for n in s.windows.names}
        blind = {}
        names = self._hosts_to_weigh(node_of, on_host, blind)
        insts = [(i, n) for n in names for i in on_host[n]]
        if not insts:
            raise FellBack('no instance runs on the hosts weighed')
        bg, demand, vcpus, vnfs_ok, fine_ok = self._background(names, insts)
        blind.update({names[h]: 'no load average history'
                      for h in np.flatnonzero(~fine_ok)})
        for (inst, name), good in zip(insts, vnfs_ok):
            if not good:
                blind.setdefault(name, f'no CPU history of instance '
                                       f'{inst.uuid}')
        if blind:
            LOG.warning('Hosts left out of the plan (more than %.0f %% of '
                        'their history missing): %s',
                        100 * forecast_inputs.MAX_MISSING, ', '.join(
                            f'{n} ({why})' for n, why in sorted(
                                blind.items())))
        kept = [h for h, n in enumerate(names) if n not in blind]
        if len(kept) < 2:
            raise FellBack('fewer than two hosts have a history to '
                           'forecast from')
        local = np.full(len(names), -1)
        local[kept] = np.arange(len(kept))
        on = [v for v, (_, n) in enumerate(insts) if n not in blind]
        cores = np.array([float(node_of[names[h]].vcpus) for h in kept])
        seen = forecast_inputs.outlook(
            bg[kept], demand[on], cores, self.steps, self.period,
            float(p['forecast_tolerance']), step=self.step,
            forecast=p['planner_forecast'], margin=self.margin)
        self.share = seen.share
        if not seen.trusted:
            if np.isnan(seen.share):
                raise FellBack(
                    f'the history read ({bg.shape[1]} samples of '
                    f'{self.step} s) is too short to check a forecast of '
                    f'{self.look_ahead:.0f} s against what followed it')
            what = (f'the nearer of its seasonal and analog forecasts '
                    f'({seen.forecast})' if p['planner_forecast'] ==
                    forecast_inputs.SEASONAL_OR_ANALOG else
                    f'its {seen.forecast} forecast')
            envelope = (f'; no time envelope within '
                        f'{self.margin * self.step} s either way passed '
                        f'either' if self.margin else '')
            raise FellBack(
                f'{what} of the last {self.look_ahead:.0f} s missed '
                f'by {100 * seen.share:.0f} % of the hosts\' cores on '
                f'average over its worst {self.period * self.step} s '
                f'(forecast_tolerance '
                f'{100 * float(p["forecast_tolerance"]):.0f} %){envelope}',
                forecast_missed=True)
        fc = stay_planner.Forecast(
            bg=seen.bg, demand=seen.demand, vcpus=vcpus[on], cores=cores,
            host_of=local[np.array([names.index(insts[v][1]) for v in on],
                                   dtype=int)], dt=float(self.step),
            bg_high=seen.bg_high)
        LOG.info('Planning on the %s of the next %.0f s: it missed '
                 'by %.0f %% of the cores of the %d hosts weighed over the '
                 'worst %d s of the last one (forecast_tolerance %.0f %%)',
                 self._forecast_name(seen.forecast, seen.of), self.look_ahead,
                 100 * seen.share,
                 len(kept),
                 self.period * self.step,
                 100 * float(p['forecast_tolerance']))
        self._plan(fc, [node_of[names[h]] for h in kept],
                   [insts[v][0] for v in on])

    def _forecast_name(self, forecast, of=None):
        """What the log calls the forecast ``forecast`` planned on (``of``:
        the one an envelope is of).
        """
        if forecast != load_forecast.ENVELOPE:
            return _NAMES[forecast]
        return _NAMES[forecast].format(of, self.margin * self.step)

    def _hosts_to_weigh(self, node_of, on_host, blind):
        """The names of the hosts the plan weighs, chosen on every host's
        load at a coarse step (a sixth of the samples at 10 s); those
        without that history are added to ``blind``.
        """
        names = list(self.s.windows.names)
        coarse = max(self.step, COARSE_STEP)
        load, _ = self._host_history(names, coarse)
        load, hosts_ok = forecast_inputs.gaps_filled(load)
        blind.update({names[h]: 'no load average history'
                      for h in np.flatnonzero(~hosts_ok)})
        ok = np.flatnonzero(hosts_ok)
        chosen = ok[forecast_inputs.hosts_to_plan(
            load[ok], [float(node_of[names[h]].vcpus) for h in ok],
            [bool(on_host[names[h]]) for h in ok],
            int(math.ceil(self.look_ahead / coarse)),
            max(int(self.s.params['period']) // coarse, 1),
            PLANNER_SOURCES, PLANNER_DESTINATIONS)]
        return [names[h] for h in chosen]

    def _background(self, names, insts):
        """``(background, demand, vcpus, ok, load_ok)`` of hosts ``names``
        and of the instances ``insts`` [(instance, host name)] on them now,
        then of the instances that ran there within the history (their past
        load counts in the hosts' too); ``ok``: whether each row of
        ``insts`` has a history, ``load_ok`` each host.
        """
        s = self.s
        past = list(s.migration_history(
            s.now - float(s.params['planner_history'])))
        here = set(names)
        known = {i.uuid for i, _ in insts}
        gone = sorted({m.instance_uuid for m in past if m.instance_uuid and
                       m.instance_uuid not in known and
                       {m.source_node, m.destination_node} & here})
        uuids = [i.uuid for i, _ in insts] + gone
        elsewhere = [self._elsewhere(u) for u in gone]
        vcpus = np.array([float(max(i.vcpus or 1, 1)) for i, _ in insts] +
                         [v for v, _ in elsewhere])
        load, times, cpu = self._histories(names, uuids, vcpus)
        load, load_ok = forecast_inputs.gaps_filled(load)
        cpu, ok = forecast_inputs.gaps_filled(cpu)
        demand = np.where(ok[:, None], cpu, 0.0) / 100.0 * vcpus[:, None]
        host_now = {i.uuid: n for i, n in insts}
        host_now.update({u: h for u, (_, h) in zip(gone, elsewhere)})
        where = forecast_inputs.placement_history(uuids, names, host_now,
                                                  past, times)
        return (forecast_inputs.background(load, demand, where), demand,
                vcpus, ok[:len(insts)], load_ok)

    def _elsewhere(self, uuid):
        """``(vCPUs, host name or None)`` of an instance that ran on the
        hosts weighed and is now elsewhere (gone from the scope: its CPU
        counts as one vCPU's, on no host weighed).
        """
        model = self.s.compute_model
        try:
            return (float(max(model.get_instance_by_uuid(uuid).vcpus or 1,
                              1)),
                    model.get_node_by_instance_uuid(uuid).hostname)
        except (exception.InstanceNotFound, exception.InstanceNotMapped,
                exception.ComputeResourceNotFound):
            return 1.0, None

    def _host_history(self, names, step):
        """``(load, times)``: the hosts' load average over the planner's
        history at ``step`` seconds (one bulk read), from its first sample
        on.
        """
        try:
            hw = self.s.datasource_backend.cluster_windows(
                *self._read_of(metric_windows.COMPUTE_NODE, names, 'load',
                               step))
        except metric_windows.MetricsUnavailable as exc:
            raise HistoryUnreadable(
                f'cannot read the hosts\' load history: {exc}')
        return _load_from(hw)

    def _histories(self, names, uuids, vcpus):
        """``(load, times, cpu)``: the load average of hosts ``names`` as
        :meth:`_host_history`'s, and the (instances, samples) CPU of
        ``uuids``, percent of their ``vcpus``, over the same ``times``;
        read together (one request on InfluxDB); garbage is a lost sample.
        """
        s = self.s
        ds = s.datasource_backend
        try:
            hw, iw = ds.cluster_windows_together([
                self._read_of(metric_windows.COMPUTE_NODE, names, 'load',
                              self.step),
                self._read_of(metric_windows.INSTANCE, uuids, 'cpu',
                              self.step)])
        except metric_windows.MetricsUnavailable as exc:
            raise HistoryUnreadable(
                f'cannot read the hosts\' load and their instances\' CPU '
                f'history: {exc}')
        load, times = _load_from(hw)
        cpu = np.array(iw.data['cpu'], dtype=float)[:, -times.size:] \
            if times.size else np.zeros((len(uuids), 0))
        if getattr(ds, 'instance_cpu_per_vcpu', False):
            cpu /= vcpus[:, None]
        lo, hi = metric_windows.PHYSICAL_RANGES[
            metric_windows.INSTANCE]['cpu']
        tol = metric_windows.RANGE_TOLERANCE
        with np.errstate(invalid='ignore'):
            cpu[~((cpu >= lo - tol) & (cpu <= hi + tol))] = np.nan
        return load, times, np.clip(cpu, lo, hi)

    def _read_of(self, resource_type, names, metric, step):
        """The :meth:`~.base.WindowsDataSource.cluster_windows` arguments
        of one metric of ``names`` over the planner's history.
        """
        return (resource_type, tuple(names),
                int(self.s.params['planner_history']), step, (metric,),
                self.s.now)

    def _starved(self, sub, nodes):
        """(hosts,) whether a VNF may leave each host: the reactive
        mode's speed_floor asked of the forecast, its worst trigger period
        over the look-ahead. A VNF on a host whose consumers get nearly
        all the CPU they ask for throughout gains too little by leaving
        for its switch-over's timeouts, which the plan's mean hides.
        """
        p = self.s.params
        floor = float(p['speed_floor'])
        worst, starved = move_gate.starved_over(
            forecast_inputs.host_demand(sub), sub.cores,
            max(int(round(int(p['period']) / self.step)), 1), floor)
        if not starved.all():
            LOG.info('No VNF leaves a host whose consumers the forecast sees '
                     'get at least %.0f %% of the CPU they ask for over every '
                     '%s s of the next %.0f s (speed_floor): %s',
                     100 * floor, p['period'], self.look_ahead, ', '.join(
                         f'{nodes[h].hostname} ({100 * worst[h]:.0f} %)'
                         for h in np.flatnonzero(~starved)))
        return starved

    def _count_left_alone(self, nodes, starved, valued, moves, sub):
        """Count the hosts in failure state the plan judged and left
        alone in ``moves_not_worth``, as the reactive gate counts those it
        refuses, so that ``relieved_ratio`` does not read a right "no
        move" as a failure of the plan.
        """
        s = self.s
        sources = {int(sub.host_of[m.vnf]) for m in moves}
        budget_left = len(moves) < int(s.params['max_migrations'])
        left = []
        for h, node in enumerate(nodes):
            if h in sources or not s._is_failing(node):
                continue
            why = _left_alone_reason(starved[h], h in valued, budget_left)
            if why is not None:
                s._count_not_worth(node)
                left.append(f'{node.hostname} ({why})')
        if left:
            LOG.info('Hosts in failure state left as they are by the plan: '
                     '%s', ', '.join(left))

    def _plan(self, sub, nodes, sub_insts):
        """Greedy moves over the forecast ``sub`` of hosts ``nodes`` and
        VNFs ``sub_insts``, within the allowed ones, added to the solution.
        """
        s, p = self.s, self.s.params
        left, recent_dest = migrations.recent(
            s.migration_history, s.now, p['cooldown'],
            p['received_cooldown'])
        starved = self._starved(sub, nodes)
        sources = [n for h, n in enumerate(nodes)
                   if starved[h] and n.hostname not in recent_dest]
        movable = s._movable_instances(sources, left)
        pick = [i for n in sources for i in movable[n.uuid]]
        inst_win = s._instance_windows(pick)
        slot = {i.uuid: v for v, i in enumerate(sub_insts)}
        migration, series, cpu_mean = {}, {}, {}
        for node in sources:
            for inst in movable[node.uuid]:
                load = s._instance_load(inst, inst_win, node)
                if load is None:
                    continue
                cpu, mem, cpu_mean[slot[inst.uuid]] = load
                est = s._estimate_migration(inst, cpu, mem)
                migration[slot[inst.uuid]] = (
                    est.seconds if est.converges else math.inf,
                    est.downtime)
                series[inst.uuid] = (placement.filled(cpu),
                                     placement.filled(mem))
        # destinations asked roomiest first: moves of equal value (a VNF
        # that slows no one wherever it goes) go to the most room
        headroom = forecast_inputs.least_headroom(sub)
        targets = sorted((h for h, n in enumerate(nodes)
                          if placement.destination_state_reason(n) is None),
                         key=lambda h: (-headroom[h], h))
        free = {h: dict(s.compute_model.get_node_free_resources(nodes[h]))
                for h in targets}
        cpu_now = {h: s._host_cpu(s.node_names[nodes[h].uuid])
                   for h in range(len(nodes))}
        threshold = float(p['threshold'])

        def points(vnf, h):
            # host CPU percent points the VNF's load is on host h
            return float(placement.cpu_contribution(
                cpu_mean[vnf], sub_insts[vnf].vcpus, nodes[h].vcpus))

        def allowed(planned):
            room = {h: dict(f) for h, f in free.items()}
            cpu = dict(cpu_now)
            moved = set()
            for vnf, dest in planned:
                inst, src = sub_insts[vnf], int(sub.host_of[vnf])
                moved.add(vnf)
                cpu[dest] += points(vnf, dest)
                cpu[src] -= points(vnf, src)
                for key, need in (('vcpu', inst.vcpus),
                                  ('memory', inst.memory),
                                  ('disk', inst.disk)):
                    room[dest][key] -= need
                    if src in room:
                        room[src][key] += need
            out = []
            for vnf in sorted(migration):
                if vnf in moved:
                    continue
                src = int(sub.host_of[vnf])
                # as in reactive mode, a destination must not be the host
                # the VNF left within the cooldown, stay out of failure
                # state with the VNF, and have the room for it
                uuid = sub_insts[vnf].uuid
                out.extend((vnf, h) for h in targets if h != src and
                           placement.return_reason(
                               uuid, nodes[h].hostname, left) is None and
                           not placement.is_failing(cpu[h] + points(vnf, h),
                                                    threshold) and
                           placement.capacity_reason(
                               sub_insts[vnf], room[h]) is None)
            return out

        moves = stay_planner.plan(sub, allowed, migration,
                                  int(p['max_migrations']))
        if not moves:
            LOG.info('No move pays over the next %.0f s by the forecast '
                     '(%d hosts and %d movable VNFs weighed)',
                     self.look_ahead, len(nodes), len(migration))
        self._count_left_alone(nodes, starved, {
            int(sub.host_of[v]) for v in migration}, moves, sub)
        for move in moves:
            inst = sub_insts[move.vnf]
            src, dst = nodes[int(sub.host_of[move.vnf])], nodes[move.dest]
            s._plan_move(inst, src, dst, *series[inst.uuid])
            LOG.info('Move %s from %s to %s: over the next %.0f s it '
                     'spares its hosts\' VNFs %.0f request-seconds, the '
                     'migration (%d s) and its switch-over included',
                     inst.uuid, src.hostname, dst.hostname,
                     self.look_ahead, move.gain, move.steps * self.step)


def _left_alone_reason(starved, valued, budget_left):
    """Why the plan leaves a host in failure state as it is on purpose
    (None: it did not judge it, e.g. its VNFs could not move or the
    budget went to other hosts): its consumers are not starved by the
    forecast, or no move of its VNFs pays over the look-ahead.
    """
    if not starved:
        return 'the forecast does not see its consumers starved'
    if valued and budget_left:
        return 'no move of its VNFs pays over the look-ahead'
    return None


def _load_from(hw):
    """``(load, times)`` of hosts' load windows ``hw``, from the first
    sample any host has on (a history younger than ``planner_history``:
    what there is); garbage is a lost sample.
    """
    load = np.array(hw.data['load'], dtype=float)
    with np.errstate(invalid='ignore'):
        load[~((load >= 0) & np.isfinite(load))] = np.nan
    seen = np.flatnonzero(np.isfinite(load).any(axis=0))
    start = int(seen[0]) if seen.size else load.shape[1]
    return load[:, start:], np.asarray(hw.times, dtype=float)[start:]


def look_ahead_seconds(params):
    """The planner's look-ahead: ``look_ahead``, or twice the cooldown
    and a minute for the migration (a moved VNF does not go back within
    the cooldown and stays unless its new host fails in turn, and what it
    costs there shows over the time it takes to be moved on, another
    cooldown).
    """
    if params.get('look_ahead') is not None:
        return float(params['look_ahead'])
    return 2.0 * float(params['cooldown']) + 60.0
