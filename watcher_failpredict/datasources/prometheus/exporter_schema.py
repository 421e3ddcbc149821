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

"""Series shaped as node_exporter and the libvirt exporter expose them.

The Prometheus counterpart of
:mod:`~watcher_failpredict.datasources.collectd_schema`: given a host's (an
instance's) metrics over time in the units of
:mod:`~watcher_failpredict.datasources.windows`, the series an exporter
would have produced, as ``(metric name, labels, times, values)`` for
:func:`~.local_server.openmetrics`. Tests and benchmarks write the same
history into both backends with it and collectd_schema.

* host: ``node_cpu_seconds_total`` per CPU and mode (``idle``, ``user``),
  ``node_memory_MemTotal_bytes`` / ``..._MemAvailable_bytes``,
  ``node_load1``, ``node_disk_read_bytes_total`` /
  ``..._written_bytes_total`` (device ``vda``),
  ``node_network_receive_bytes_total`` / ``..._transmit_bytes_total``
  (``eth0``, and a busy ``lo`` readers must ignore), each with the host
  label and the ``instance`` / ``job`` labels a scrape adds;
* instance: ``libvirt_domain_info_cpu_time_seconds_total``,
  ``libvirt_domain_info_virtual_cpus``,
  ``libvirt_domain_info_memory_usage_bytes`` (the allocation),
  ``libvirt_domain_memory_stats_available_bytes`` /
  ``..._unused_bytes`` (the guest's view), with the UUID label.

A NaN value is a missing scrape: no sample (counters still advance at
the rate of 0 over it). Counters start at ``counter_base``.
"""

import numpy as np

from watcher_failpredict.datasources.prometheus import query

GIB = 2.0 ** 30


def _counter(times, rates, base, state=None, key=None):
    """Counter values whose rate between samples i-1 and i is rates[i].

    With ``state`` (a dict kept by the caller across calls), the counter
    of ``key`` continues from its last ``(time, value)`` there (the first
    sample adds ``rates[0]`` over the gap) and its new last is stored: a
    history rendered piece by piece has no counter resets.
    """
    t = np.asarray(times, dtype=float)
    r = np.nan_to_num(np.asarray(rates, dtype=float))
    first = 0.0
    if state is not None and key in state and t.size:
        last_t, base = state[key]
        first = (t[0] - last_t) * r[0]
    values = base + np.cumsum(np.concatenate([[first], np.diff(t) * r[1:]]))
    if state is not None and t.size:
        state[key] = (t[-1], values[-1])
    return values


def _kept(name, labels, times, values, given):
    t = np.asarray(times, dtype=float)
    v = np.asarray(values, dtype=float)
    ok = ~np.isnan(np.asarray(given, dtype=float))
    return (name, labels, t[ok], v[ok])


def host_series(host, times, cpu_pct, mem_pct, load, disk_bps, net_bps,
                label='fqdn', n_cpus=2, mem_total_bytes=8 * GIB,
                counter_base=1e6, loopback=True, counters=None):
    """node_exporter's series of one host (see the module docstring).

    :param cpu_pct, mem_pct, load, disk_bps, net_bps: arrays over
        ``times`` (NaN: no scrape); disk and network bytes per second are
        split evenly between read/written and received/sent.
    :param counters: a dict the caller keeps to render consecutive
        pieces of one history: counters continue across calls
    """
    n = len(times)
    full = np.ones(n)
    labels = {label: host, 'instance': f'{host}:9100', 'job': 'node'}
    cpu = np.asarray(cpu_pct, dtype=float)
    out = []
    for i in range(n_cpus):
        for mode, share in (('idle', 1 - cpu / 100.0), ('user', cpu / 100.0)):
            key = (host, query.NODE_CPU, i, mode)
            out.append(_kept(query.NODE_CPU,
                             dict(labels, cpu=str(i), mode=mode), times,
                             _counter(times, share, counter_base, counters,
                                      key), cpu))
    mem = np.asarray(mem_pct, dtype=float)
    out.append(_kept(query.NODE_MEM_TOTAL, labels, times,
                     full * mem_total_bytes, mem))
    out.append(_kept(query.NODE_MEM_AVAILABLE, labels, times,
                     mem_total_bytes * (1 - mem / 100.0), mem))
    out.append(_kept(query.NODE_LOAD1, labels, times, load, load))
    for names, rate, device in (
            ((query.NODE_DISK_READ, query.NODE_DISK_WRITTEN), disk_bps,
             'vda'),
            ((query.NODE_NET_RX, query.NODE_NET_TX), net_bps, 'eth0')):
        half = np.asarray(rate, dtype=float) / 2.0
        for name in names:
            out.append(_kept(name, dict(labels, device=device), times,
                             _counter(times, half, counter_base, counters,
                                      (host, name, device)), rate))
    if loopback:
        busy = full * 1e8
        for name in (query.NODE_NET_RX, query.NODE_NET_TX):
            out.append(_kept(name, dict(labels, device='lo'), times,
                             _counter(times, busy, counter_base, counters,
                                      (host, name, 'lo')), full))
    return out


def instance_series(uuid, times, cpu_pct, mem_used_bytes, vcpus=1,
                    label='uuid', mem_total_bytes=None, counter_base=5.0,
                    full=True, counters=None):
    """The libvirt exporter's series of one instance.

    :param cpu_pct: percent of the instance's ``vcpus`` (NaN: no scrape)
    :param mem_used_bytes: memory the guest uses
    :param full: also the series the datasource does not read (vCPU count,
        allocation); off to write less in large benchmarks
    :param counters: as :func:`host_series`'
    """
    cpu = np.asarray(cpu_pct, dtype=float)
    used = np.asarray(mem_used_bytes, dtype=float)
    if mem_total_bytes is None:
        mem_total_bytes = max(float(np.nanmax(used)) if used.size and
                              not np.isnan(used).all() else 0.0, GIB)
    labels = {label: uuid, 'domain': f'instance-{uuid[:8]}',
              'instance': 'compute:9177', 'job': 'libvirt'}
    ones = np.ones(len(times))
    out = [
        _kept(query.LIBVIRT_CPU, labels, times,
              _counter(times, cpu / 100.0 * vcpus, counter_base, counters,
                       (uuid, query.LIBVIRT_CPU)), cpu),
        _kept(query.LIBVIRT_MEM_AVAILABLE, labels, times,
              ones * mem_total_bytes, used),
        _kept(query.LIBVIRT_MEM_UNUSED, labels, times,
              mem_total_bytes - used, used),
    ]
    if full:
        out += [
            _kept('libvirt_domain_info_virtual_cpus', labels, times,
                  ones * vcpus, cpu),
            _kept(query.LIBVIRT_MEM_USAGE, labels, times,
                  ones * mem_total_bytes, used),
        ]
    return out
