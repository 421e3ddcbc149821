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

"""Proactive mode of ``predicted_least_failure`` (``mode=proactive``):
hosts whose predicted risk of failure within the model's horizon reaches
``risk_threshold`` are sources too, and every move, off them or off a
failing host, must pass the cost-benefit gate
(:func:`strategies.placement.gate`): the risk it removes against the
migration's cost. Each function takes ``s``, the PredictedLeastFailure
audit under way (its working model, windows, parameters and model; a
move is planned on it).
"""

import numpy as np
from oslo_log import log

from watcher_failpredict.strategies import errors
from watcher_failpredict.strategies import placement

LOG = log.getLogger(__name__)

#: Proactive mode tries at most this many VNFs per source before giving up
#: on it (each try costs one model call for its destinations).
PROACTIVE_TRIES = 3


def at_risk_hosts(s, failing):
    """Proactive sources: usable hosts not among ``failing`` (failing
    by CPU, or starved) whose predicted risk is >= risk_threshold,
    riskiest first.
    """
    if not s._proactive:
        return []
    rt = float(s.params['risk_threshold'])
    failing_uuids = {n.uuid for n, _ in failing}
    out = []
    for uuid, node in s.compute_model.get_all_compute_nodes().items():
        risk = s.host_risk.get(s.node_names[uuid])
        if uuid not in failing_uuids and risk is not None and \
                s.node_names[uuid] in s.windows.names and \
                placement.is_at_risk(risk, rt):
            out.append((node, risk))
    return sorted(out, key=lambda nr: (-nr[1], nr[0].hostname))


def relieve(s, source, instances, inst_win, threshold):
    """Proactive mode: plan the move off ``source`` that passes the
    cost-benefit gate with the best margin; False when none does.

    Candidates are ordered by their net value on the source (risk
    reduction there minus the migration's cost); the first
    PROACTIVE_TRIES are tried against their best destination, and the
    first that passes the gate is planned. Every refusal is logged with
    its benefit and cost.
    """
    params = s.params
    src_name = s.node_names[source.uuid]
    if s._is_failing(source) and not s._starved_enough(source):
        return False
    horizon = s._model_horizon()
    if not horizon:
        raise errors.IncompatibleParameters(
            'proactive mode needs the model\'s horizon to weigh a '
            'migration\'s cost, and the model records none')
    weight = float(params['cost_weight'])
    risk_threshold = float(params['risk_threshold'])
    cands = []
    for inst in instances:
        load = s._instance_load(inst, inst_win, source)
        if load is None:
            continue
        cpu, mem, cpu_mean = load
        relief = float(placement.cpu_contribution(
            cpu_mean, inst.vcpus, source.vcpus))
        if relief <= 0:
            continue
        est = s._estimate_migration(inst, cpu, mem)
        if not est.converges:
            LOG.info('Move of %s off %s not planned: %s', inst.uuid,
                     source.hostname, est.reason)
            continue
        cands.append((inst, placement.filled(cpu),
                      placement.filled(mem), est))
    if not cands:
        LOG.warning('Host %s is %s but none of its instances can be '
                    'moved', source.hostname, s._why_source(source))
        return False
    # the source's risk now and without each candidate: one model call
    rows = [src_name] * (len(cands) + 1)
    w = s.windows.subset(rows)
    leaving = [placement.moved_load(i, c, m, source)
               for i, c, m, _ in cands]
    w = placement.add_to_rows(w, {
        metric: -np.stack([np.zeros_like(leaving[0][metric])] +
                          [load[metric] for load in leaving])
        for metric in placement.MOVED_METRICS})
    w = placement.clip_nonnegative(w, placement.MOVED_METRICS)
    src_risks = np.asarray(s.bundle.predict_risk(w), dtype=float)
    src_before = float(src_risks[0])
    scored = []
    for (inst, cpu_s, mem_s, est), after in zip(cands, src_risks[1:]):
        net = (src_before - float(after)) - placement.migration_penalty(
            est.seconds, horizon, weight)
        scored.append((-net if not np.isnan(net) else np.inf,
                       inst.uuid, inst, cpu_s, mem_s, est, float(after)))
    scored.sort(key=lambda t: (t[0], t[1]))
    for _, _, inst, cpu_s, mem_s, est, src_after in \
            scored[:PROACTIVE_TRIES]:
        found = s._best_destination(source, inst, cpu_s, mem_s, threshold,
                                    max_risk=risk_threshold)
        if found is None:
            continue
        dest, dst_after = found
        dst_name = s.node_names[dest.uuid]
        dst_before = float(s.bundle.predict_risk(
            s.windows.subset([dst_name]))[0])
        verdict = placement.gate(
            src_before, src_after, dst_before, dst_after, est.seconds,
            horizon, weight,
            len(s.compute_model.get_node_instances(source)),
            len(s.compute_model.get_node_instances(dest)))
        if not verdict.passed:
            LOG.info('Move of %s from %s to %s not planned: %s',
                     inst.uuid, source.hostname, dest.hostname,
                     verdict.reason)
            continue
        s._plan_move(inst, source, dest, cpu_s, mem_s)
        LOG.info('Move %s (%s MB, ~%.0f s to migrate) from %s to %s: %s',
                 inst.uuid, inst.memory, est.seconds, source.hostname,
                 dest.hostname, verdict.reason)
        return True
    LOG.info('No move off %s passes the cost-benefit gate',
             source.hostname)
    return False
