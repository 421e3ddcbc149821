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

"""Whether relieving a host in failure state pays: the speed_floor gate.

A host whose CPU is at or above the threshold is in failure state, but its
VNFs suffer only when they ask for more CPU than it has: then its cores are
shared among more runnable threads than there are cores, and each gets
``cores / demand`` of what it asks for (processor sharing). A live
migration costs the moved VNF a dirty-page copy and a switch-over outage;
when the consumers get nearly all they ask for, that cost is larger than
what the move spares them. The testbed measured the gate (doc/source/
testbed.rst, "Whether to move"); the paper's rule is ``speed_floor = 1``.

Pure functions of their inputs, as OpenStack Neat's overload detectors:
the strategy reads the load average (runnable demand in cores, collectd's
``load`` plugin) over the trigger period and asks :func:`worth_moving`;
its planned mode (and the testbed's ``planner-perfect``) asks the same of
the forecast's worst period (:func:`starved_over`).
"""

import numpy as np

from watcher_failpredict.strategies import queueing


def consumer_speed(demand, cores):
    """Mean share of the CPU its consumers ask for that a host gives them.

    :param demand: runnable demand in cores per sample (the load average);
        NaN where a sample is missing
    :param cores: the host's cores (vCPUs of the compute node)
    :returns: the mean of ``min(1, cores / demand)`` over the samples
        present, or NaN when none is
    """
    demand = np.asarray(demand, dtype=float)
    demand = demand[~np.isnan(demand)]
    if not demand.size:
        return float('nan')
    return float(np.mean(queueing.speed(demand, cores)))


def lowest_period_speed(demand, cores, period_steps):
    """(hosts,) the lowest :func:`consumer_speed` of each host over any
    ``period_steps`` consecutive steps of ``demand`` (hosts, T), in cores
    (over all T when shorter): how starved a forecast sees each host,
    averaged as the trigger averages.
    """
    speed = queueing.speed(demand, np.asarray(cores, dtype=float).reshape(
        -1, 1))
    if not speed.shape[1]:
        return np.ones(speed.shape[0])
    n = min(max(int(period_steps), 1), speed.shape[1])
    run = np.cumsum(np.pad(speed, ((0, 0), (1, 0))), axis=1)
    return ((run[:, n:] - run[:, :-n]) / n).min(axis=1)


def starved_over(demand, cores, period_steps, floor):
    """``(worst, starved)``: each host's :func:`lowest_period_speed` over
    ``demand`` (hosts, T), and whether that is starved enough to relieve
    (:func:`worth_moving` against ``floor``): planned mode's gate.
    """
    worst = lowest_period_speed(demand, cores, period_steps)
    return worst, np.array([worth_moving(w, floor) for w in worst],
                           dtype=bool)


def worth_moving(speed, floor):
    """True when a host whose consumers get ``speed`` is starved enough to
    be relieved; a host without a known speed (NaN) is relieved, as the
    threshold says (the caller warns).
    """
    if floor >= 1.0 or np.isnan(speed):
        return True
    return speed < floor
