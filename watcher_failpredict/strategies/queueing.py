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

"""What a move is worth to the requests: the ``move_rule=queueing`` gate.

A host's cores are shared among its runnable demand (processor sharing):
with ``C`` cores and a load average of ``D`` cores, every consumer runs at
``g = min(1, C / D)`` of a core. A VNF whose own demand is ``a`` cores on
``v`` vCPUs is then busy ``rho = a / (v g)`` of the time it can run, and
by Little's law the requests it holds (queued or in service: the
request-seconds its clients spend in it, per second) are ``rho / (1 -
rho)`` for an M/M/1 queue. That count does not depend on the request rate
or the CPU per request, which collectd does not measure: the VNF's CPU
and its host's load average are enough.

At ``rho`` past ``KNEE`` the queue no longer settles: the backlog grows
until clients time out. The count is continued there along its tangent
(a straight line), so a saturated VNF costs more the deeper it is
saturated instead of a finite cap that makes every saturated host look
the same.

A move's value is the requests it spares over the time the VNF will
stay (``stay``), counted from when the migration ends, minus what the
migration costs meanwhile: the copy threads' extra load on both hosts for
its duration and the switch-over outage, during which the VNF serves
nothing. The move pays only when the value is positive; the strategy
moves the VNF whose move is worth the most.

Pure functions of plain numbers, as OpenStack Neat's overload detectors.
"""

import dataclasses
import math

import numpy as np

#: Utilisation past which the M/M/1 count is continued along its tangent.
KNEE = 0.95
#: Cores a live migration's copy threads add to each of the two hosts.
MIGRATION_OVERHEAD_CORES = 0.25
#: Seconds a migrated VNF is unreachable after its pause, while the
#: network learns its new location (added to the pre-copy's downtime).
SWITCHOVER_S = 2.0


def speed(demand, cores):
    """Processor-sharing speed ``min(1, cores / demand)``; NaN stays NaN.
    """
    demand = np.asarray(demand, dtype=float)
    with np.errstate(divide='ignore', invalid='ignore'):
        g = np.where(demand > cores, cores / demand, 1.0)
    return np.where(np.isnan(demand), np.nan, g)


def requests_in_system(rho, knee=KNEE):
    """Little's law for an M/M/1 queue, ``rho / (1 - rho)``, continued
    along its tangent past ``knee``.
    """
    rho = np.maximum(np.asarray(rho, dtype=float), 0.0)
    at_knee = knee / (1.0 - knee)
    slope = 1.0 / (1.0 - knee) ** 2
    with np.errstate(divide='ignore', invalid='ignore'):
        below = rho / (1.0 - np.minimum(rho, knee))
    return np.where(rho <= knee, below, at_knee + slope * (rho - knee))


def host_requests(background, vnf_demand, vnf_vcpus, cores, extra=0.0):
    """Requests held by the VNFs of one host.

    :param background: runnable demand (cores) of everything on the host
        that is not one of ``vnf_demand``
    :param vnf_demand: each VNF's demand, cores
    :param vnf_vcpus: each VNF's vCPUs
    :param cores: the host's cores
    :param extra: demand added on top (a migration's copy threads)
    """
    demand = np.asarray(vnf_demand, dtype=float)
    if not demand.size:
        return 0.0
    vcpus = np.maximum(np.asarray(vnf_vcpus, dtype=float), 1.0)
    g = float(speed(background + demand.sum() + extra, cores))
    return float(np.sum(requests_in_system(demand / (vcpus * g))))


@dataclasses.dataclass(frozen=True)
class HostLoad:
    """What the queueing gate needs of a host: its cores, its runnable
    demand (the load average, cores) and the demand of the VNFs on it
    (cores), with their vCPUs. The rest of the demand is the host's
    background, held as it is whichever VNF leaves or arrives.
    """

    cores: float
    demand: float
    vnf_demand: tuple
    vnf_vcpus: tuple

    @property
    def background(self):
        return max(self.demand - float(np.sum(self.vnf_demand)), 0.0)

    def requests(self, extra=0.0, without=None, plus=None):
        """Requests held by its VNFs, optionally without VNF index
        ``without`` or with ``plus`` = (demand, vcpus) added.
        """
        dem, vc = list(self.vnf_demand), list(self.vnf_vcpus)
        if without is not None:
            del dem[without], vc[without]
        if plus is not None:
            dem.append(plus[0])
            vc.append(plus[1])
        return host_requests(self.background, dem, vc, self.cores, extra)


@dataclasses.dataclass(frozen=True)
class MoveValue:
    """A move's value in request-seconds (see :func:`move_value`)."""

    value: float
    spared_per_s: float
    migration_cost: float
    outage_cost: float
    stay_s: float = 0.0

    @property
    def pays(self):
        return self.value > 0

    def reason(self):
        if math.isinf(self.migration_cost):
            return (f'spares {self.spared_per_s:.3f} requests in system but '
                    f'its live migration would not converge')
        return (f'spares {self.spared_per_s:.3f} requests in system for '
                f'{self.stay_s:.0f} s, costs {self.migration_cost:.1f} '
                f'request-s while migrating and {self.outage_cost:.1f} in its '
                f'switch-over: worth {self.value:+.1f} request-s')


def move_value(source, index, destination, migration_s, downtime_s, stay_s):
    """Request-seconds a move of VNF ``index`` of ``source`` spares.

    ``(stay_s - migration_s) x (requests before - after)``: what the
    source's VNFs, the moving one and the destination's VNFs hold, before
    and after the move, over the part of the stay after the migration;
    minus ``migration_s x`` what the copy threads add on both hosts; minus
    the outage (``downtime_s + SWITCHOVER_S``), during which the moving
    VNF counts as the most loaded of its host. Infinite migrations never
    pay.
    """
    a, v = source.vnf_demand[index], source.vnf_vcpus[index]
    before = source.requests() + destination.requests()
    after = source.requests(without=index) + destination.requests(
        plus=(a, v))
    spared = before - after
    if migration_s is None or not math.isfinite(migration_s):
        return MoveValue(-math.inf, float(spared), math.inf, 0.0,
                         float(stay_s))
    copying = (source.requests(extra=MIGRATION_OVERHEAD_CORES) +
               destination.requests(extra=MIGRATION_OVERHEAD_CORES)) - before
    outage_s = max(float(downtime_s), 0.0) + SWITCHOVER_S
    # while paused the VNF serves nothing: its requests pile up as on a
    # saturated host (the tangent's count at twice the knee's load)
    outage = outage_s * float(requests_in_system(2 * KNEE))
    useful = max(float(stay_s) - float(migration_s), 0.0)
    migration_cost = float(migration_s) * copying
    value = useful * spared - migration_cost - outage
    return MoveValue(float(value), float(spared), float(migration_cost),
                     float(outage), float(stay_s))
