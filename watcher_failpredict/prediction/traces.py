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

"""Training sources beside InfluxDB: real utilisation traces and a synthetic
periodic workload, each returned as host-level ClusterWindows.

* ``alibaba``: Alibaba cluster-trace-v2018 machine_usage, physical servers
  (host level as is); 5-minute bins or the ~60 s raw samples.
* ``bitbrains``: Bitbrains Rnd (GWA-T-12) VM CPU, 5 minutes; VMs are summed
  onto simulated hosts (see :func:`vms_to_hosts`).
* ``azure``: Azure public dataset V1 VM CPU (5-minute average or maximum),
  summed onto simulated hosts likewise.
* ``synthetic``: the paper's setting, hosts with repeating stress patterns
  (sines, ramps, bursts, square waves, calm hosts) plus noise.

The trace files are read from the traces directory
(:mod:`watcher_failpredict.tracesets.location`: the ``traces`` argument,
else ``$FAILPREDICT_TRACES``, else ``$XDG_CACHE_HOME/watcher-failpredict/
traces``); the Azure subset also ships with the package. A missing set
raises :class:`~watcher_failpredict.tracesets.location.TraceSetMissing`
naming the ``watcher-failpredict traces fetch NAME`` command. Alibaba and
Bitbrains are research-only data sets: never copy them into the
repository.

Traces have no absolute clock (Alibaba, Azure) or start in 2013
(Bitbrains); times are Unix seconds from ``start`` (default: the trace's
own offsets), which only matters for the cycle-position features.
"""

import csv

import numpy as np

from watcher_failpredict.datasources import windows as metric_windows
from watcher_failpredict.tracesets import location

TRACES_ENV = location.TRACES_ENV
TRACE_NAMES = ('synthetic', 'alibaba', 'bitbrains', 'azure')

#: Per trace: default failure threshold (percent) and load cycle (s). 90 %
#: is rare on the Alibaba machines (13 entries into >= 90 % on 5-minute
#: means over all 16), so their default is 80 %.
TRACE_DEFAULTS = {
    'synthetic': {'threshold': 90.0, 'cycle': 3600.0},
    'alibaba': {'threshold': 80.0, 'cycle': 86400.0},
    'bitbrains': {'threshold': 90.0, 'cycle': 86400.0},
    'azure': {'threshold': 90.0, 'cycle': 86400.0},
}


def traces_dir(path=None):
    """The traces directory (see :func:`location.traces_dir`)."""
    return location.traces_dir(path)


def _file(traces, folder, name):
    """A trace file's path (plain or compressed).

    :raises location.TraceSetMissing: with the fetch command
    """
    return location.find(f'{folder}/{name}', traces)


def _float(text):
    text = text.strip()
    return float(text) if text else np.nan


def _read_wide(path):
    """(first column as float array, column names, (n_rows, n_cols))."""
    with location.open_text(path) as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [[_float(x) for x in row] for row in reader if row]
    arr = np.array(rows, dtype=float)
    return arr[:, 0], header[1:], arr[:, 1:]


def _windows(names, times, step, data):
    n = len(names)
    last_seen = np.full(n, np.nan)
    cpu = data['cpu']
    for i in range(n):
        ok = np.flatnonzero(~np.isnan(cpu[i]))
        if ok.size:
            last_seen[i] = times[ok[-1]]
    return metric_windows.ClusterWindows(names=tuple(names),
                                         times=np.asarray(times, dtype=float),
                                         step=int(step), data=data,
                                         last_seen=last_seen)


def vms_to_hosts(vm_cpu, sizes=None, vms_per_host=4, overcommit=1.5,
                 seed=0):
    """Sum VM CPU series onto simulated hosts.

    VMs are shuffled (seeded) and dealt into hosts of ``vms_per_host``; a
    host has ``sum(sizes) / overcommit`` cores, so its CPU percent is
    ``100 * sum(vm_pct / 100 * size) / host_cores`` clipped at 100 (a
    saturated server cannot give more). A step where any of a host's VMs
    has no sample is missing (NaN), not an underestimate.

    :param vm_cpu: (n_vms, n_steps) percent of each VM's allocation
    :param sizes: (n_vms,) vCPUs per VM (default 1 each)
    :returns: (host CPU (n_hosts, n_steps), list of VM index arrays)
    """
    vm_cpu = np.asarray(vm_cpu, dtype=float)
    n_vms = vm_cpu.shape[0]
    if vms_per_host < 1 or overcommit <= 0:
        raise ValueError(f'vms_per_host must be >= 1 and overcommit > 0, '
                         f'got {vms_per_host} and {overcommit}')
    sizes = (np.ones(n_vms) if sizes is None
             else np.asarray(sizes, dtype=float))
    sizes = np.where(sizes > 0, sizes, 1.0)     # bad metadata: 0 cores
    order = np.random.RandomState(seed).permutation(n_vms)
    groups = [order[i:i + vms_per_host]
              for i in range(0, n_vms - vms_per_host + 1, vms_per_host)]
    hosts = np.empty((len(groups), vm_cpu.shape[1]))
    for j, g in enumerate(groups):
        used = (vm_cpu[g] / 100.0 * sizes[g, None]).sum(axis=0)
        cores = sizes[g].sum() / overcommit
        hosts[j] = np.clip(100.0 * used / cores, 0.0, 100.0)
    return hosts, groups


def load_alibaba(traces=None, resolution='5min', start=0.0):
    """Alibaba machines, host level: cpu and memory percent.

    :param resolution: '5min' (machine_usage_5min.csv, 300 s) or 'raw'
        (machine_usage_raw.csv averaged into 60 s steps; irregular samples
        leave gaps as NaN)
    """
    folder = 'alibaba2018_machines'
    if resolution == '5min':
        path, step = _file(traces, folder, 'machine_usage_5min.csv'), 300
        cols = ('cpu_mean', 'mem_mean')
    elif resolution == 'raw':
        path, step = _file(traces, folder, 'machine_usage_raw.csv'), 60
        cols = ('cpu_util_percent', 'mem_util_percent')
    else:
        raise ValueError(f'resolution must be 5min or raw, got '
                         f'{resolution!r}')
    per = {}
    with location.open_text(path) as f:
        for row in csv.DictReader(f):
            rec = per.setdefault(row['machine_id'], ([], [], []))
            rec[0].append(float(row['time_stamp']))
            rec[1].append(_float(row[cols[0]]))
            rec[2].append(_float(row[cols[1]]))
    names = sorted(per)
    raw = {'cpu': {}, 'memory': {}}
    t_max = 0.0
    for n in names:
        t, c, m = (np.array(x, dtype=float) for x in per[n])
        raw['cpu'][n] = (t + start, c)
        raw['memory'][n] = (t + start, m)
        t_max = max(t_max, t.max())
    end = start + (t_max // step + 1) * step
    return metric_windows.align(raw, tuple(names), ('cpu', 'memory'), start,
                                end, step)


def load_bitbrains(traces=None, vms_per_host=4, overcommit=1.5, seed=0,
                   start=None):
    """Bitbrains Rnd, 60 VMs of Q3 2013 summed onto 15 simulated hosts."""
    folder = 'bitbrains_rnd'
    ts, vms, cpu = _read_wide(_file(traces, folder,
                                    'cpu_pct_5min_2013Q3.csv'))
    cores = {}
    with location.open_text(_file(traces, folder, 'vm_summary.csv')) as f:
        for row in csv.DictReader(f):
            cores[f'vm{row["vm"]}'] = _float(row['cores'])
    sizes = np.array([cores.get(v, 1.0) for v in vms])
    hosts, _ = vms_to_hosts(cpu.T, sizes, vms_per_host, overcommit, seed)
    times = ts - ts[0] + (ts[0] if start is None else start)
    names = [f'bb-host-{i:02d}' for i in range(hosts.shape[0])]
    return _windows(names, times, 300, {'cpu': hosts})


def load_azure(traces=None, signal='max', vms_per_host=4, overcommit=2.0,
               seed=0, start=0.0):
    """Azure V1, 70 VMs (avg or max CPU per 5 min) on 17 simulated hosts.

    The VMs' sizes are not in the sample, so each counts as one vCPU.
    Defaults: the 5-minute maximum (the README's natural overload signal;
    summed averages never reach 90 %) and an overcommit of 2.
    """
    if signal not in ('avg', 'max'):
        raise ValueError(f'signal must be avg or max, got {signal!r}')
    t, vms, cpu = _read_wide(_file(traces, 'azure_v1_vms',
                                   f'cpu_{signal}_5min.csv'))
    hosts, _ = vms_to_hosts(cpu.T, None, vms_per_host, overcommit, seed)
    names = [f'az-host-{i:02d}' for i in range(hosts.shape[0])]
    return _windows(names, t + start, 300, {'cpu': hosts})


def _burst(x):
    """Idle 40 %, a fast climb to 100 % over a quarter cycle, a plateau."""
    return np.select([x < 0.5, x < 0.75, x < 0.9],
                     [40.0, 40.0 + 240.0 * (x - 0.5), 100.0], 40.0)


def _phase(n_steps, step, cycle, jitter, rng):
    """Cycle phase in [0, 1) whose speed wanders by about +-jitter.

    Real stress patterns are not clockwork: each cycle runs a little
    early or late, so "the value one cycle ago" is informative but not
    exact. The speed is 1 + jitter * a smooth random process (AR(1), one
    cycle correlation time).
    """
    steps_per_cycle = max(cycle / step, 1.0)
    a = np.exp(-1.0 / steps_per_cycle)
    e = rng.normal(0, np.sqrt(1 - a * a), n_steps)
    z = np.empty(n_steps)
    z[0] = rng.normal()
    for i in range(1, n_steps):
        z[i] = a * z[i - 1] + e[i]
    speed = np.clip(1.0 + jitter * z, 0.2, None) / steps_per_cycle
    return np.mod(rng.uniform() + np.cumsum(speed), 1.0)


def synthetic_periodic(n_hosts=12, days=1.0, step=60, cycle=3600.0, seed=0,
                       noise=3.0, jitter=0.3, start=1_700_000_000.0):
    """The paper's setting: hosts under repeating stress patterns.

    Host i gets pattern ``i % 5``: sine, sawtooth ramp, burst (idle, then a
    climb that passes the calm hosts' level only minutes before
    saturating), square wave, or calm; levels, amplitudes and phases are
    drawn per host so that some cross 90 % once per cycle and others never
    do. Memory, load, disk and network loosely follow CPU. ``jitter``
    makes the cycles irregular (see _phase); 0 gives exact repetition, for
    which the seasonal-naive baseline is nearly perfect.
    """
    rng = np.random.RandomState(seed)
    n_steps = int(round(days * 86400 / step))
    times = start + step * np.arange(n_steps, dtype=float)
    cpu = np.empty((n_hosts, n_steps))
    for i in range(n_hosts):
        x = _phase(n_steps, step, cycle, jitter, rng)
        kind = i % 5
        if kind == 0:
            lvl = 50 + 40 * np.sin(2 * np.pi * x)
            cpu[i] = lvl + rng.uniform(-8, 8)
        elif kind == 1:
            cpu[i] = rng.uniform(25, 35) + rng.uniform(55, 75) * x
        elif kind == 2:
            cpu[i] = _burst(x)
        elif kind == 3:
            cpu[i] = np.where(x < rng.uniform(0.2, 0.4),
                              rng.uniform(85, 99), rng.uniform(30, 50))
        else:
            cpu[i] = np.full(n_steps, rng.uniform(50, 82))
    cpu = np.clip(cpu + rng.normal(0, noise, cpu.shape), 0, 100)
    data = {
        'cpu': cpu,
        'memory': np.clip(40 + 0.3 * cpu + rng.normal(0, 1, cpu.shape), 0,
                          100),
        'load': np.clip(cpu / 10 + rng.normal(0, 0.2, cpu.shape), 0, None),
        'disk': 1e5 * (1 + cpu / 50),
        'net': 1e6 * (1 + cpu / 50),
    }
    names = [f'syn-{i:03d}' for i in range(n_hosts)]
    return _windows(names, times, step, data)


def load_trace(name, traces=None, **options):
    """ClusterWindows of trace ``name`` (see TRACE_NAMES)."""
    loaders = {'synthetic': synthetic_periodic, 'alibaba': load_alibaba,
               'bitbrains': load_bitbrains, 'azure': load_azure}
    if name not in loaders:
        raise ValueError(f'unknown trace {name!r}; known: {TRACE_NAMES}')
    if name == 'synthetic':
        return synthetic_periodic(**options)
    return loaders[name](traces=traces, **options)
