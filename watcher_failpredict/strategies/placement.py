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

"""The decision rules of ``predicted_least_failure`` as small pure functions.

Like OpenStack Neat's detectors, each rule is a function of plain values
(numbers, arrays, Watcher model elements) that returns a decision and, when
it says no, the reason why. The strategy only wires them together, reads the
metrics and the model, and logs the reasons; these functions can be tested
one by one without a cluster.

Units: host CPU and memory are percent of the host (0-100); instance CPU is
percent of the instance's own vCPUs; instance memory is MiB.
"""

import collections
import dataclasses
import math
import warnings

import numpy as np
from watcher.decision_engine.model import element

from watcher_failpredict.prediction import feature_sets
from watcher_failpredict.prediction import ranking

# -- host evaluability and the trigger ----------------------------------------


def period_mean(series, period_steps):
    """Mean of the last ``period_steps`` columns, ignoring NaN.

    :param series: array ``(n, steps)`` or ``(steps,)``
    :returns: array ``(n,)`` (or a float); NaN where no sample exists
    """
    arr = np.asarray(series, dtype=float)
    period_steps = max(int(period_steps), 1)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        return np.nanmean(arr[..., -period_steps:], axis=-1)


def host_skip_reason(last_seen, mean_cpu, now, max_age):
    """Why a host cannot be evaluated (None when it can).

    A host is usable only if it reported recently and has CPU samples in
    the trigger period: a decision taken on missing data would treat an
    unknown host as idle, the worst possible destination error.
    """
    if last_seen is None or math.isnan(last_seen):
        return 'no metrics at all in the window'
    age = now - last_seen
    if age > max_age:
        return (f'stale metrics: latest sample {age:.0f} s old '
                f'(metrics_max_age {max_age} s)')
    if mean_cpu is None or math.isnan(mean_cpu):
        return 'no CPU sample in the trigger period'
    return None


def capacity_skip_reason(node):
    """Why a node's reported capacity makes it unusable (None: usable).

    A node reporting 0 vCPUs or 0 MB of memory (a hypervisor whose
    resource tracker has not reported yet, or a misconfigured one) gives
    no way to convert a VNF's load into percent of the host: it can be
    neither a source nor a destination, and it must not crash the audit.
    """
    for field, unit in (('vcpus', 'vCPUs'), ('memory', 'MB of memory')):
        value = getattr(node, field, None)
        if value is None or not value > 0:
            return (f'reports {value} {unit}: a VNF\'s load cannot be '
                    f'scaled to it')
    return None


def is_failing(mean_cpu, threshold):
    """The paper's failure state: mean CPU over the period >= threshold."""
    return mean_cpu >= threshold


# -- which VNF to move --------------------------------------------------------


def instance_skip_reason(instance):
    """Why an instance may not be moved (None when it may)."""
    if instance.watcher_exclude:
        return 'excluded by the audit scope (watcher_exclude)'
    if instance.locked:
        return 'locked'
    if instance.state != element.InstanceState.ACTIVE.value:
        return f'not ACTIVE (state {instance.state})'
    return None


def return_reason(instance_uuid, host, recently_left):
    """Why ``host`` may not take back the instance (None when it may): the
    instance left it within the cooldown.

    :param recently_left: {instance UUID: (seconds ago, host it left, host
        it went to)} of the last migration of each instance within the
        cooldown
    """
    left = recently_left.get(instance_uuid)
    if left is not None and left[1] == host:
        return f'the instance left it {left[0]:.0f} s ago (cooldown)'
    return None


def under_way_reason(instance_uuid, host, recently_left):
    """Why the instance, on ``host`` in the model, may not be moved now
    (None when it may): its last migration, to another host, has not
    completed (Nova moves an instance in the model when its migration
    completes, and refuses a second one meanwhile).
    """
    left = recently_left.get(instance_uuid)
    if left is not None and left[2] != host:
        return f'its migration to {left[2]} is under way'
    return None


def cpu_contribution(instance_cpu, instance_vcpus, node_vcpus):
    """Host CPU percent points an instance's load accounts for on a node.

    ``instance_cpu`` (percent of its own vCPUs; a number or an array) times
    its share of the node's physical vCPUs.
    """
    if not node_vcpus:
        raise ValueError('node has 0 vCPUs: cannot scale instance CPU')
    return np.asarray(instance_cpu, dtype=float) * instance_vcpus / node_vcpus


def memory_contribution(instance_memory_mib, node_memory_mb):
    """Host memory percent an instance's memory (MiB) accounts for."""
    if not node_memory_mb:
        raise ValueError('node has 0 MB of memory: cannot scale instance '
                         'memory')
    return (np.asarray(instance_memory_mib, dtype=float) * 100.0
            / node_memory_mb)


#: The window metrics a move changes: the keys of :func:`moved_load`;
#: windows without one of them (a model without the cyclic features) are
#: left as they are.
MOVED_METRICS = ('cpu', 'memory', feature_sets.LAST_CYCLE)


def moved_load(instance, cpu_series, memory_series, node):
    """The load ``instance`` adds to ``node`` (or, negated, takes from it).

    ``{'cpu': host CPU percent points, 'memory': host memory percent,
    LAST_CYCLE: the CPU's again}``, one value per step of the series (see
    :data:`MOVED_METRICS`). The one definition of what a move
    adds: the feasibility check, the windows the model ranks destinations
    on and the working windows updated after a planned move all use it.
    """
    cpu = cpu_contribution(cpu_series, instance.vcpus, node.vcpus)
    # a host's last load cycle with the VNF is its own plus the VNF's load
    # as it is now (the VNF's own past is not read)
    return {'cpu': cpu, 'memory': memory_contribution(memory_series,
                                                      node.memory),
            feature_sets.LAST_CYCLE: cpu}


def period_mean_with(host_series, added, period_steps):
    """A host's trigger-period mean CPU once ``added`` (per step) is added.

    Computed exactly as the working windows will hold it after the move
    (:func:`add_to_rows` then :func:`clip_nonnegative`, then
    :func:`period_mean`): steps where the host has no sample stay without
    one, so the mean is over the host's sampled steps with the load the
    VNF had at those very steps. Adding the VNF's mean over the whole
    period instead judged a host with gaps at 73 % that ended at 103 %.
    """
    with np.errstate(invalid='ignore'):   # inf - inf: NaN, no sample
        total = np.asarray(host_series, dtype=float) + np.asarray(
            added, dtype=float)
        return float(period_mean(np.where(total < 0, 0.0, total),
                                 period_steps))


def migration_cost(memory_mb, instance_cpu):
    """Proxy of a live migration's duration and outage.

    Pre-copy live migration sends the whole memory once, then re-sends the
    pages dirtied meanwhile; its time grows with the memory size and with
    the dirty-page rate, which rises with the guest's activity. Memory (MB)
    times (1 + CPU fraction) orders candidates the same way without a
    network model.
    """
    cpu = 0.0 if instance_cpu is None or math.isnan(instance_cpu) else float(
        instance_cpu)
    return float(memory_mb) * (1.0 + max(cpu, 0.0) / 100.0)


@dataclasses.dataclass(frozen=True)
class Candidate:
    """An instance that could leave a failing host."""

    uuid: str
    relief: float          # host CPU percent points freed on the source
    cost: float            # migration_cost()
    ends_overload: bool    # host mean CPU - relief < threshold


def make_candidate(uuid, relief, cost, host_cpu, threshold):
    return Candidate(uuid=uuid, relief=float(relief), cost=float(cost),
                     ends_overload=bool(host_cpu - relief < threshold))


#: How the VNF to move off a failing host is chosen (audit parameter
#: ``instance_choice``), default first.
INSTANCE_CHOICES = ('most_relief', 'cheapest_ending')


def choose_instance(candidates, rule=INSTANCE_CHOICES[0]):
    """The VNF to move off a failing host, or None.

    ``most_relief`` (the default): the instance whose departure relieves
    the host the most, the cheapest to migrate on ties. A saturated host
    shares its CPU among its consumers by their demand, so the largest
    consumer both frees the most for the VNFs that stay and is itself the
    most slowed; in the testbed it carries the busiest chain. Its longer
    migration is paid once, its relief at every step after.

    ``cheapest_ending`` (the rule before it): prefer the instances whose
    departure alone ends the overload, and among them the cheapest to
    migrate (the overload ends after one migration with the smallest
    outage); when none ends it alone, the one that relieves the most.

    On the validation stretch (10 seeds, the trained model behind the
    gate) ``most_relief`` lowered the mean response time on 9 of 10
    ``paper`` seeds, 8 of 10 ``paper-phases`` seeds (none worse) and 9 of
    10 ``azure`` seeds (doc/source/testbed.rst, "Which VNF").

    Candidates that relieve nothing are never chosen.
    """
    if rule not in INSTANCE_CHOICES:
        raise ValueError(f'unknown instance_choice {rule!r}; known: '
                         f'{", ".join(INSTANCE_CHOICES)}')
    useful = [c for c in candidates if c.relief > 0]
    if not useful:
        return None
    most = min(useful, key=lambda c: (-c.relief, c.cost, c.uuid))
    if rule == 'most_relief':
        return most
    ending = [c for c in useful if c.ends_overload]
    if ending:
        return min(ending, key=lambda c: (c.cost, -c.relief, c.uuid))
    return most


# -- where to -----------------------------------------------------------------


def destination_state_reason(node, source=None, skip_reason=None):
    """Why ``node`` cannot take a VNF from ``source`` by its service state
    or metrics (None: it can); the cheap check, before the CPU rule and
    :func:`capacity_reason`'s arithmetic.

    :param skip_reason: the node's host_skip_reason(), if any
    """
    if source is not None and node.uuid == source.uuid:
        return 'it is the source'
    if node.status != element.ServiceState.ENABLED.value:
        return f'compute service {node.status}'
    if node.state != element.ServiceState.ONLINE.value:
        return f'compute service {node.state}'
    return skip_reason or None


def capacity_reason(instance, free):
    """Why ``free`` capacity cannot hold ``instance`` (None: it can)."""
    for key, need, unit in (('vcpu', instance.vcpus, 'vCPU'),
                            ('memory', instance.memory, 'MB RAM'),
                            ('disk', instance.disk, 'GB disk')):
        if free[key] < need:
            return (f'not enough {unit}: {free[key]:g} free, '
                    f'{need:g} needed')
    return None


def add_to_rows(windows, additions, rows=None):
    """A copy of a ClusterWindows with ``additions[metric]`` added to rows.

    ``additions[metric]`` is either one series (added to every selected
    row) or one series per selected row (2-D). Missing samples stay NaN.
    """
    data = dict(windows.data)
    idx = slice(None) if rows is None else list(rows)
    for metric, extra in additions.items():
        if metric not in data:
            continue
        arr = data[metric].copy()
        arr[idx] = arr[idx] + np.asarray(extra, dtype=float)
        data[metric] = arr
    return dataclasses.replace(windows, data=data)


def filled(series):
    """A series with its NaN replaced by its mean (zeros when all NaN).

    Used for the instance load moved between hosts: a missing instance
    sample must not erase the destination's own sample.
    """
    arr = np.asarray(series, dtype=float)
    if np.isnan(arr).all():
        return np.zeros_like(arr)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        return np.where(np.isnan(arr), np.nanmean(arr), arr)


Ranked = collections.namedtuple('Ranked', 'name risk cpu_now peak',
                                defaults=(math.nan,))


def rank_destinations(names, risks, cpu_now, peaks=None,
                      risk_tolerance=ranking.RISK_TOLERANCE):
    """Destinations from best to worst, by :func:`ranking.order`.

    With ``peaks`` (the model's predicted future peak CPU of each host
    with the VNF added): risk first when it is material (more than
    ``risk_tolerance`` above the safest candidate's), then the lower
    predicted peak, then the risk, then the name. The CPU now plays no
    part: among hosts the model calls equally safe, the one it expects to
    stay further from the line wins, even if it is busier now.
    Without ``peaks`` (a model with no peak regressor): lowest risk, ties
    by the lower CPU now, then the name, as before. Hosts the model could
    not score (NaN risk) are dropped.
    """
    names = list(names)
    risks = np.asarray(risks, dtype=float)
    cpu_now = np.asarray(cpu_now, dtype=float)
    idx = ranking.order(risks, peaks, cpu_now, names, risk_tolerance)
    pk = (np.full(len(names), math.nan) if peaks is None
          else np.asarray(peaks, dtype=float))
    return [Ranked(names[i], float(risks[i]), float(cpu_now[i]),
                   float(pk[i])) for i in idx]


def expected_failing_hosts(risks):
    """Expected number of hosts in failure state: the sum of their risks."""
    risks = np.asarray(risks, dtype=float)
    return float(np.nansum(risks)) if risks.size else 0.0


def clip_nonnegative(windows, metrics):
    """A copy where ``metrics`` are clipped at 0 (NaN kept).

    Subtracting a VNF's measured load from its source can undershoot zero
    when the host and guest agents disagree slightly; negative usage is
    meaningless to the model.
    """
    data = dict(windows.data)
    for metric in metrics:
        if metric in data:
            data[metric] = np.where(data[metric] < 0, 0.0, data[metric])
    return dataclasses.replace(windows, data=data)


# -- proactive mode: trigger and cost-benefit gate ----------------------------


def is_at_risk(risk, risk_threshold):
    """Proactive trigger: predicted probability of failure within the
    horizon at or above ``risk_threshold`` (NaN never triggers).
    """
    return risk is not None and not math.isnan(risk) and \
        risk >= risk_threshold


@dataclasses.dataclass(frozen=True)
class GateDecision:
    """The cost-benefit gate's verdict on one move (see :func:`gate`)."""

    benefit: float
    cost: float
    passed: bool
    reason: str


def migration_penalty(migration_seconds, horizon, cost_weight):
    """Cost of a move in the benefit's unit (host failures avoided).

    ``cost_weight x migration time / horizon``: while the migration runs
    the source still carries the VNF, the guest is slowed by dirty-page
    tracking and ends with a switch-over outage, i.e. the VNF suffers for
    that share of the horizon as if its host were failing. Infinite when
    pre-copy does not converge (the migration would be aborted).
    """
    if not horizon or horizon <= 0:
        raise ValueError(f'horizon must be > 0 s to weigh a migration, got '
                         f'{horizon!r}')
    if migration_seconds is None or math.isinf(migration_seconds):
        return math.inf
    return float(cost_weight) * float(migration_seconds) / float(horizon)


def gate(src_before, src_after, dst_before, dst_after, migration_seconds,
         horizon, cost_weight, src_instances=1, dst_instances=0):
    """Cost-benefit gate of a proactive move.

    What a failing host costs an NFV operator is the VNFs on it: each one's
    service chain degrades. So the benefit is counted in VNFs: the expected
    number of instances on a host in failure state within the horizon,
    before and after the move,

    ``before = src_before * n_src + dst_before * n_dst``,
    ``after = src_after * (n_src - 1) + dst_after * (n_dst + 1)``,

    ``n_src`` / ``n_dst`` the instances on the source (the moving one
    included) and on the destination now. It counts the moving VNF escaping
    its source's risk, the source's remaining VNFs relieved by its load
    leaving, and the destination's VNFs burdened by it arriving; a move of
    one small VNF off a host it cannot relieve still pays when the VNF
    lands somewhere safe. cost = :func:`migration_penalty` (the moving
    VNF's share of the horizon spent migrating, weighted). The move passes
    only when benefit > cost; the reason says which side won and by how
    much.
    """
    n_src, n_dst = int(src_instances), int(dst_instances)
    if n_src < 1 or n_dst < 0:
        raise ValueError(f'the source holds the moving instance (got '
                         f'{n_src}) and the destination holds >= 0 (got '
                         f'{n_dst})')
    before = float(src_before) * n_src + float(dst_before) * n_dst
    after = float(src_after) * (n_src - 1) + float(dst_after) * (n_dst + 1)
    benefit = before - after
    if math.isnan(benefit):
        return GateDecision(benefit, math.nan, False,
                            'the model could not score the move')
    cost = migration_penalty(migration_seconds, horizon, cost_weight)
    detail = (f'benefit {benefit:.3f} VNFs = source risk {src_before:.3f} '
              f'-> {src_after:.3f} x {n_src} -> {n_src - 1} instances, '
              f'destination {dst_before:.3f} -> {dst_after:.3f} x {n_dst} '
              f'-> {n_dst + 1}; cost {cost:.3f} = {cost_weight:g} x '
              f'{migration_seconds:.0f} s / {horizon:.0f} s')
    if benefit > cost:
        return GateDecision(benefit, cost, True, detail)
    return GateDecision(benefit, cost, False,
                        f'cost exceeds benefit: {detail}')
