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

"""The testbed's physics, as small pure functions of numpy arrays.

Every equation here is written out in ``doc/source/testbed.rst``. Units:
CPU demand in cores, time in seconds, memory in MB, request rates in
requests per second. Each function works on scalars or arrays alike so the
simulator can apply it to every server, VNF or chain at once.
"""

import numpy as np


def contention(demand_cores, cores):
    """Processor-sharing slowdown of a server: ``g = min(1, C / D)``.

    A server's ``C`` cores are shared among all runnable demand ``D`` (the
    stress-ng workers of the background load, the VNFs' vCPUs, migration
    threads) in proportion: when more work is runnable than there are
    cores, each unit of work runs at ``C / D`` of a core. ``g`` is the
    speed every consumer gets, 1 on an unsaturated server.
    """
    demand = np.asarray(demand_cores, dtype=float)
    cores = np.asarray(cores, dtype=float)
    with np.errstate(divide='ignore', invalid='ignore'):
        g = np.where(demand > cores, cores / np.where(demand > 0, demand, 1),
                     1.0)
    return g


def host_cpu_percent(demand_cores, cores):
    """What collectd reports: ``100 * min(D, C) / C`` (busy share)."""
    demand = np.asarray(demand_cores, dtype=float)
    return 100.0 * np.minimum(demand, cores) / cores


def service_rate(vcpus, speed, cost):
    """Requests per second a VNF can serve: ``mu = v * g / c``.

    :param vcpus: the VNF's vCPUs ``v``
    :param speed: its server's slowdown ``g`` (contention())
    :param cost: core-seconds of CPU per request ``c``
    """
    return np.asarray(vcpus, dtype=float) * speed / np.asarray(cost, float)


def mm1_sojourn(mu, utilisation, rho_max=0.95):
    """Mean M/M/1 sojourn time ``1 / (mu (1 - rho))``, rho capped.

    The cap stands for the finite queue: beyond it the backlog (see
    queue_step()) carries the excess instead of an infinite mean.
    """
    rho = np.clip(np.asarray(utilisation, dtype=float), 0.0, rho_max)
    mu = np.asarray(mu, dtype=float)
    with np.errstate(divide='ignore'):
        return np.where(mu > 0, 1.0 / (np.where(mu > 0, mu, 1.0) *
                                       (1.0 - rho)), np.inf)


def queue_step(backlog, arrival_rate, mu, dt, timeout):
    """One step of a hop's fluid queue.

    ``A = backlog + arrival_rate * dt`` requests are present; the hop
    serves ``S = min(A, mu * dt)``; what is left waits, except what would
    wait longer than ``timeout`` (more than ``mu * timeout`` requests
    ahead), which the clients abandon: those are timeouts.

    :returns: (served_rate, new_backlog, dropped) -- served per second,
        requests left waiting, requests timed out during the step
    """
    present = np.asarray(backlog, float) + np.asarray(arrival_rate,
                                                      float) * dt
    capacity = np.maximum(np.asarray(mu, dtype=float), 0.0) * dt
    served = np.minimum(present, capacity)
    left = present - served
    room = np.maximum(np.asarray(mu, dtype=float), 0.0) * timeout
    dropped = np.maximum(left - room, 0.0)
    return served / dt, left - dropped, dropped


def timeout_fraction(samples, timeout):
    """Share of sampled response times past the client timeout."""
    samples = np.asarray(samples, dtype=float)
    return np.mean(samples > timeout, axis=-1)


def migration_duration(memory_mb, cpu_fraction, bandwidth_mb_s=50.0,
                       dirty_mb_s_at_full_cpu=24.0, setup_s=12.0,
                       max_downtime_s=0.5, max_rounds=30):
    """Pre-copy live migration: (total seconds, stop-and-copy seconds).

    Round 0 sends the whole memory ``M`` at bandwidth ``B``; each next
    round re-sends what was dirtied meanwhile, ``r = dirty / B`` times the
    previous round, until a round would fit in ``max_downtime_s`` (or
    ``max_rounds``); the last round is sent with the VM paused. The dirty
    rate grows with the guest's CPU use (``dirty = w * cpu_fraction``).
    Nova and libvirt add a fixed ``setup_s`` (scheduling, checks,
    connection). Defaults give about 45 s for 1 GB at 80 % CPU, the
    paper's measurement, and about 33 s idle.
    """
    if memory_mb < 0 or bandwidth_mb_s <= 0:
        raise ValueError(f'memory ({memory_mb} MB) must be >= 0 and '
                         f'bandwidth ({bandwidth_mb_s} MB/s) > 0')
    ratio = min(max(float(cpu_fraction), 0.0) * dirty_mb_s_at_full_cpu /
                bandwidth_mb_s, 0.95)
    volume = float(memory_mb)
    total = 0.0
    for _ in range(max_rounds):
        t = volume / bandwidth_mb_s
        if t <= max_downtime_s:
            break
        total += t
        volume = volume * ratio
    downtime = volume / bandwidth_mb_s
    return setup_s + total + downtime, downtime


def outage_capacity_factor(outage_s, dt):
    """Share of a step a VNF can serve when it is down ``outage_s`` of it."""
    return float(np.clip(1.0 - outage_s / dt, 0.0, 1.0))
