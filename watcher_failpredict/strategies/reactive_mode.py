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

"""The reactive rules' relief of one host of ``predicted_least_failure``
(``mode=reactive``, and planned mode's fallback).

A host in failure state (or starved) gives up one VNF when the move pays:
``move_rule=queueing`` (default) moves the VNF whose move spares the most
requests over the stay (:mod:`strategies.queueing`), only when that
exceeds the migration's cost; ``speed_floor`` moves the VNF
``instance_choice`` names off a host whose consumers get less than
``speed_floor`` of the CPU they ask for (:mod:`strategies.move_gate`).
The destination is the strategy's best feasible one.
"""

import math

import numpy as np
from oslo_log import log

from watcher_failpredict.strategies import placement
from watcher_failpredict.strategies import queueing

LOG = log.getLogger(__name__)


class ReactiveRelief:
    """One host's relief by the reactive rules, in one audit.

    :param strategy: the PredictedLeastFailure audit under way (its
        working model, windows and parameters; the move is planned on it)
    """

    def __init__(self, strategy):
        self.s = strategy
        # {instance UUID: migration_time estimate} the queueing rule made
        self.estimates = {}
        # {instance UUID: its row in the source's queueing.HostLoad}
        self.vnf_slot = {}

    def relieve(self, source, instances, inst_win, threshold):
        """Plan one move off ``source``; False when none is possible or
        none is worth it.
        """
        queueing_rule = self.s.params['move_rule'] == 'queueing'
        # a host in failure state is valued over the trigger period, as
        # the threshold judged it; a starved one over the minute that
        # starved it, as its period's means still look mild
        steps = self.s.period_steps if self.s._is_failing(source) \
            else self.s.recent_steps
        if queueing_rule:
            src_load = self._host_load(source, inst_win, steps)
            if src_load is None:
                queueing_rule = False
        if not queueing_rule and not self.s._starved_enough(source):
            return False
        src_name = self.s.node_names[source.uuid]
        host_cpu = self.s._host_cpu(src_name)
        candidates, series, raw = [], {}, {}
        for inst in instances:
            load = self.s._instance_load(inst, inst_win, source)
            if load is None:
                continue
            cpu, mem, cpu_mean = load
            series[inst.uuid] = (placement.filled(cpu), placement.filled(mem))
            raw[inst.uuid] = (cpu, mem)
            relief = host_cpu - self.s._cpu_with(
                src_name, -placement.moved_load(inst, *series[inst.uuid],
                                                source)['cpu'])
            candidates.append(placement.make_candidate(
                inst.uuid, relief,
                placement.migration_cost(inst.memory, cpu_mean),
                host_cpu, threshold))
        if queueing_rule:
            choice = self._most_sparing(source, src_load, candidates, raw)
        else:
            choice = placement.choose_instance(
                candidates, self.s.params['instance_choice'])
        if choice is None:
            LOG.warning('Host %s is failing (%.1f %%) but none of its '
                        'instances can be moved', source.hostname, host_cpu)
            return False
        inst = self.s.compute_model.get_instance_by_uuid(choice.uuid)
        cpu_series, mem_series = series[choice.uuid]
        dest = self.s._best_destination(source, inst, cpu_series,
                                        mem_series, threshold)
        if dest is None:
            return False
        # the queueing rule estimated every candidate's migration already
        est = self.estimates.get(choice.uuid) or self.s._estimate_migration(
            inst, *raw[choice.uuid])
        if queueing_rule:
            worth = self._move_value(src_load, inst, dest[0], est, steps)
            if not worth.pays:
                self.s._count_not_worth(source)
                LOG.info('Move of %s from %s to %s not planned: it %s',
                         inst.uuid, source.hostname, dest[0].hostname,
                         worth.reason())
                return False
            LOG.info('Move of %s from %s to %s %s', inst.uuid,
                     source.hostname, dest[0].hostname, worth.reason())
        self.s._plan_move(inst, source, dest[0], cpu_series, mem_series)
        LOG.info('Move %s (%s MB, relieves %.1f %% points, cost %.0f) from '
                 '%s to %s', inst.uuid, inst.memory, choice.relief,
                 choice.cost, source.hostname, dest[0].hostname)
        return True

    def _host_load(self, source, inst_win, steps):
        """queueing.HostLoad of a source (its instances with CPU metrics,
        movable or not) over its last ``steps``, or None (warned) without
        a load average.
        """
        demand = self.s._load_average(source, steps)
        if np.isnan(demand):
            LOG.warning('Host %s reports no load average: what a move off '
                        'it spares cannot be weighed; falling back to '
                        'speed_floor and instance_choice', source.hostname)
            return None
        vnf_demand, vcpus, self.vnf_slot = [], [], {}
        for inst in self.s.compute_model.get_node_instances(source):
            if inst_win is None or inst.uuid not in inst_win.names or \
                    inst.uuid in self.s.garbage_instances:
                continue
            cpu = float(placement.period_mean(
                inst_win.series('cpu', inst.uuid), steps))
            if np.isnan(cpu):
                continue
            self.vnf_slot[inst.uuid] = len(vnf_demand)
            vcpus.append(float(max(inst.vcpus or 1, 1)))
            vnf_demand.append(max(cpu, 0.0) / 100.0 * vcpus[-1])
        return queueing.HostLoad(float(source.vcpus), demand,
                                 tuple(vnf_demand), tuple(vcpus))

    def _stay(self):
        """Seconds over which a move's effect is counted: a moved VNF
        cannot leave again within the cooldown, and the model sees a
        horizon ahead; the present is held as it is meanwhile.
        """
        return max(float(self.s.params['cooldown']),
                   self.s._model_horizon() or 0.0)

    def _most_sparing(self, source, src_load, candidates, raw):
        """The candidate whose move to an idle host spares the most
        requests (ties: cheapest), or None when none relieves anything;
        a VNF whose live migration would not converge is passed over.
        """
        idle = queueing.HostLoad(float(source.vcpus), 0.0, (), ())
        best = None
        for c in candidates:
            if c.relief <= 0 or c.uuid not in self.vnf_slot:
                continue
            inst = self.s.compute_model.get_instance_by_uuid(c.uuid)
            self.estimates[c.uuid] = est = self.s._estimate_migration(
                inst, *raw[c.uuid])
            if not est.converges:
                LOG.info('Instance %s on %s not a candidate: its live '
                         'migration would not converge', c.uuid,
                         source.hostname)
                continue
            spared = queueing.move_value(
                src_load, self.vnf_slot[c.uuid], idle, 0.0, 0.0,
                self._stay()).spared_per_s
            key = (-spared, c.cost, c.uuid)
            if best is None or key < best[0]:
                best = (key, c)
        return None if best is None else best[1]

    def _move_value(self, src_load, inst, dest, est, steps):
        demand = self.s._load_average(dest, steps)
        if np.isnan(demand):
            # without a load average, its busy cores are its demand
            demand = self.s._host_cpu(self.s.node_names[dest.uuid]) * \
                dest.vcpus / 100.0
        # the destination's own VNFs count in its background: the
        # feasibility rule keeps it below the threshold with the VNF, so
        # their speed rarely changes
        dst_load = queueing.HostLoad(float(dest.vcpus), demand, (), ())
        return queueing.move_value(
            src_load, self.vnf_slot[inst.uuid], dst_load,
            est.seconds if est.converges else math.inf, est.downtime,
            self._stay())
