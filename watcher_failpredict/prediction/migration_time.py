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

"""How long a live migration takes: the pre-copy model.

Why the strategy needs it: a migration is not instantaneous. While it runs
(the paper saw about 45 s for a busy 1 vCPU / 1 GB VNF) the VNF still loads
its source, the guest slows down under dirty-page tracking, and the final
switch-over stops it briefly. So

* the destination must still be healthy when the migration *completes*:
  the horizon a model should predict is at least the migration time plus a
  margin (:func:`required_horizon`);
* a move has a cost that grows with its duration (the strategy's
  cost-benefit gate weighs it against the expected risk reduction).

The model (QEMU/KVM pre-copy, as Nova drives it):

* round 0 sends the whole guest memory ``M`` over the link of bandwidth
  ``B``; every later round re-sends what the guest dirtied during the
  previous one, so with a dirty rate ``D`` round ``i`` sends ``M r**i``
  with ``r = D / B``;
* pre-copy stops when a round would take no longer than the allowed
  downtime (Nova's ``live_migration_downtime``, 500 ms): the guest is then
  paused and the remainder sent (the outage);
* it does not converge when ``r >= 1`` (dirtying outpaces the link), or when
  the rounds needed exceed Nova's completion timeout (800 s per GiB): Nova
  would abort it. The estimate then says so (``converges`` False, infinite
  time) instead of inventing a number.

The dirty rate is not measured by collectd; its proxy is the instance's
recent activity: ``D = dirty_fraction x used memory x CPU fraction`` plus the
rate at which its used memory changes (allocations write pages). With the
default ``dirty_fraction`` (0.094) a 1 GB VNF at full CPU on 1 GbE takes
about 45 s and an idle one about 10 s, matching the paper and OpenStack
measurements.
Observed durations can correct the estimate (:func:`calibration_factor`).

Units: memory in MiB, bandwidth in megabits per second, time in seconds.
"""

import dataclasses
import math
import statistics
import warnings

import numpy as np

MIB = 2 ** 20
#: Nova's default live_migration_completion_timeout, seconds per GiB.
COMPLETION_TIMEOUT_PER_GIB = 800.0


@dataclasses.dataclass(frozen=True)
class MigrationEstimate:
    """The estimated course of one live migration.

    ``seconds`` and ``downtime`` are ``math.inf`` when pre-copy does not
    converge; ``reason`` then says why.
    """

    seconds: float
    downtime: float
    rounds: int
    dirty_rate: float      # MiB/s
    bandwidth: float       # MiB/s
    converges: bool
    reason: str = None


def bandwidth_mib_per_s(mbps):
    """Megabits per second to MiB per second."""
    if mbps is None or not mbps > 0:
        raise ValueError(f'migration bandwidth must be > 0 Mbit/s, got '
                         f'{mbps!r}')
    return float(mbps) * 1e6 / 8.0 / MIB


def dirty_rate(used_memory_mib, cpu_percent, dirty_fraction,
               memory_change_rate=0.0):
    """Dirty-page rate proxy (MiB/s) from the instance's recent activity.

    :param used_memory_mib: memory the guest uses (its working set bound)
    :param cpu_percent: the guest's recent CPU, percent of its vCPUs;
        NaN or None counts as idle
    :param dirty_fraction: share of used memory dirtied per second at
        100 % CPU
    :param memory_change_rate: mean absolute change of used memory, MiB/s
    """
    cpu = 0.0 if cpu_percent is None or math.isnan(cpu_percent) else \
        min(max(float(cpu_percent), 0.0), 100.0)
    used = 0.0 if used_memory_mib is None or math.isnan(used_memory_mib) \
        else max(float(used_memory_mib), 0.0)
    change = 0.0 if memory_change_rate is None or \
        math.isnan(memory_change_rate) else abs(float(memory_change_rate))
    return float(dirty_fraction) * used * cpu / 100.0 + change


def precopy(memory_mib, dirty_mib_per_s, bandwidth_mbps, max_downtime=0.5,
            setup_time=2.0,
            completion_timeout_per_gib=COMPLETION_TIMEOUT_PER_GIB):
    """Estimate a pre-copy live migration; see the module docstring.

    :param memory_mib: guest memory to transfer (its flavor's RAM)
    :param dirty_mib_per_s: dirty-page rate, MiB/s
    :param bandwidth_mbps: link bandwidth for the migration, Mbit/s
    :param max_downtime: seconds of pause at which pre-copy stops
    :param setup_time: fixed seconds before the first byte is copied
    :returns: MigrationEstimate
    """
    if memory_mib is None or not memory_mib > 0:
        raise ValueError(f'instance memory must be > 0 MiB, got '
                         f'{memory_mib!r}')
    if not max_downtime > 0:
        raise ValueError(f'max_downtime must be > 0 s, got {max_downtime!r}')
    bw = bandwidth_mib_per_s(bandwidth_mbps)
    dirty = max(float(dirty_mib_per_s), 0.0)
    ratio = dirty / bw
    first = float(memory_mib) / bw           # seconds of round 0
    if first <= max_downtime:
        return MigrationEstimate(setup_time + first, first, 0, dirty, bw,
                                 True)
    if ratio == 0.0:
        # nothing dirtied: one copy, then only the switch-over itself
        return MigrationEstimate(setup_time + first, 0.0, 1, dirty, bw, True)
    if ratio >= 1.0:
        return MigrationEstimate(
            math.inf, math.inf, 0, dirty, bw, False,
            f'pre-copy does not converge: the guest dirties '
            f'{dirty:.0f} MiB/s, the link carries {bw:.0f} MiB/s')
    # smallest n with first * ratio**n <= max_downtime
    rounds = max(math.ceil(math.log(max_downtime / first) /
                           math.log(ratio)), 1)
    copy = first * (1.0 - ratio ** rounds) / (1.0 - ratio)
    downtime = first * ratio ** rounds
    seconds = setup_time + copy + downtime
    timeout = completion_timeout_per_gib * float(memory_mib) / 1024.0
    if seconds > timeout:
        return MigrationEstimate(
            math.inf, math.inf, rounds, dirty, bw, False,
            f'pre-copy would need {seconds:.0f} s, beyond Nova\'s '
            f'completion timeout ({timeout:.0f} s for {memory_mib:g} MiB)')
    return MigrationEstimate(seconds, downtime, rounds, dirty, bw, True)


def memory_change_rate(memory_series, step):
    """Mean absolute change of a used-memory series (MiB/s), NaN skipped."""
    arr = np.asarray(memory_series, dtype=float)
    arr = arr[~np.isnan(arr)]
    if arr.size < 2 or not step:
        return 0.0
    return float(np.mean(np.abs(np.diff(arr)))) / float(step)


def estimate_instance(memory_mib, cpu_series, memory_series, step, conf,
                      factor=1.0):
    """Estimate the live migration of one instance from its recent windows.

    :param memory_mib: the instance's flavor RAM (what is transferred)
    :param cpu_series: its recent CPU, percent of its vCPUs (NaN = missing)
    :param memory_series: its recent used memory, MiB (NaN = missing; all
        missing means it uses its whole flavor)
    :param step: seconds between samples
    :param conf: the ``[failpredict]`` group (``CONF.failpredict``)
    :param factor: correction from observed migrations
        (:func:`calibration_factor`), applied to the duration
    """
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        cpu = float(np.nanmean(np.asarray(cpu_series, dtype=float))) \
            if np.size(cpu_series) else math.nan
        mem = np.asarray(memory_series, dtype=float)
        used = float(np.nanmean(mem)) if mem.size and \
            not np.isnan(mem).all() else float(memory_mib)
    rate = dirty_rate(min(used, float(memory_mib)), cpu,
                      conf.migration_dirty_fraction,
                      memory_change_rate(mem, step))
    est = precopy(memory_mib, rate, conf.migration_bandwidth_mbps,
                  conf.migration_max_downtime, conf.migration_setup_time)
    if factor != 1.0 and est.converges:
        est = dataclasses.replace(est, seconds=est.seconds * factor)
    return est


def calibration_factor(samples, minimum=3, bounds=(0.25, 4.0)):
    """Correction factor for estimates from past migrations.

    :param samples: iterable of ``(estimated_seconds, observed_seconds)``
        for migrations that completed
    :returns: the median of observed / estimated, clipped to ``bounds``;
        1.0 with fewer than ``minimum`` usable samples (a few outliers
        should not steer every estimate)
    """
    ratios = [float(obs) / float(est) for est, obs in samples
              if est and obs and math.isfinite(est) and math.isfinite(obs)
              and est > 0 and obs > 0]
    if len(ratios) < minimum:
        return 1.0
    return min(max(statistics.median(ratios), bounds[0]), bounds[1])


def required_horizon(estimates, margin):
    """Horizon (s) a destination's prediction must cover: the longest
    converging migration planned plus ``margin``; None without any.
    """
    finite = [e.seconds for e in estimates if e.converges]
    if not finite:
        return None
    return max(finite) + float(margin)
