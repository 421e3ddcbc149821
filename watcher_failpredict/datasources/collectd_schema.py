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

"""The collectd schema as InfluxDB's native collectd input writes it.

InfluxDB 1.x's ``[[collectd]]`` input (``parse-multivalue-plugin = split``,
the default) turns every collectd value into one point:

* measurement ``<plugin>_<data source name>``: ``cpu_value``,
  ``memory_value``, ``load_shortterm``, ``disk_read`` / ``disk_write``
  (type ``disk_octets``, ``disk_ops``, ...), ``interface_rx`` /
  ``interface_tx`` (type ``if_octets``, ``if_packets``, ...), ``virt_value``;
* one float field ``value``; GAUGEs as they are, DERIVE counters raw
  (readers need ``non_negative_derivative``);
* tags ``host`` (collectd ``Hostname``; for the virt plugin with
  ``HostnameFormat uuid`` the domain UUID), ``instance`` (plugin instance),
  ``type``, ``type_instance``. An empty identifier part is *not* written as a
  tag at all, which InfluxQL matches as ``instance = ''``.

This module holds those names for the datasource, and renders points the way
collectd + InfluxDB would store them, as line protocol, for tests, the
benchmark and the testbed (which write them with
:meth:`~watcher_failpredict.datasources.influxdb.client.InfluxDBClient.write`).
It needs nothing beyond the standard library.
"""

import math

# -- measurements -----------------------------------------------------------
CPU = 'cpu_value'
MEMORY = 'memory_value'
LOAD = 'load_shortterm'
LOAD_MIDTERM = 'load_midterm'
LOAD_LONGTERM = 'load_longterm'
DISK_READ = 'disk_read'
DISK_WRITE = 'disk_write'
IF_RX = 'interface_rx'
IF_TX = 'interface_tx'
VIRT = 'virt_value'

# -- tags -------------------------------------------------------------------
TAG_HOST = 'host'
TAG_INSTANCE = 'instance'
TAG_TYPE = 'type'
TAG_TYPE_INSTANCE = 'type_instance'
FIELD = 'value'

# -- collectd types (types.db) ------------------------------------------------
TYPE_PERCENT = 'percent'        # GAUGE 0..100
TYPE_CPU = 'cpu'                # DERIVE, jiffies
TYPE_MEMORY = 'memory'          # GAUGE, bytes
TYPE_LOAD = 'load'              # GAUGE
TYPE_DISK_OCTETS = 'disk_octets'    # DERIVE, bytes
TYPE_DISK_OPS = 'disk_ops'          # DERIVE, operations
TYPE_IF_OCTETS = 'if_octets'        # DERIVE, bytes
TYPE_IF_PACKETS = 'if_packets'      # DERIVE, packets
TYPE_IF_ERRORS = 'if_errors'        # DERIVE, packets
TYPE_VIRT_CPU_TOTAL = 'virt_cpu_total'  # DERIVE, nanoseconds of CPU time
TYPE_VIRT_VCPU = 'virt_vcpu'            # DERIVE, ns per vCPU

#: cpu plugin states (Linux), in /proc/stat order.
CPU_STATES = ('user', 'nice', 'system', 'idle', 'wait', 'interrupt',
              'softirq', 'steal')
CPU_IDLE = 'idle'
#: memory plugin type instances (Linux). Their sum is the host's memory.
MEMORY_STATES = ('used', 'buffered', 'cached', 'free', 'slab_recl',
                 'slab_unrecl')
MEMORY_USED = 'used'
#: virt plugin memory type instances used to derive the guest's use
#: (libvirt virDomainMemoryStats, reported in bytes by collectd).
VIRT_MEMORY_TOTAL = 'total'
VIRT_MEMORY_AVAILABLE = 'available'
VIRT_MEMORY_UNUSED = 'unused'
VIRT_MEMORY_RSS = 'rss'
#: The loopback interface; its traffic never leaves the host.
LOOPBACK = 'lo'
#: Linux USER_HZ: jiffies per second in /proc/stat.
USER_HZ = 100
NS_PER_S = 1e9

CPU_FORMS = ('percent', 'jiffies')
INSTANCE_FORMS = ('guest', 'virt')


# -- line protocol ------------------------------------------------------------

def _escape_key(text, what):
    text = str(text)
    if '\\' in text or '\n' in text:
        raise ValueError(f'{what} {text!r} contains a backslash or newline, '
                         f'which line protocol cannot carry unambiguously')
    return (text.replace(',', r'\,').replace('=', r'\=')
            .replace(' ', r'\ '))


def _escape_measurement(text):
    text = str(text)
    if '\\' in text or '\n' in text:
        raise ValueError(f'measurement {text!r} contains a backslash or '
                         f'newline')
    return text.replace(',', r'\,').replace(' ', r'\ ')


def point(measurement, tags, value, t):
    """One point as line protocol (field ``value``, time in seconds).

    Tags whose value is empty or None are left out, as InfluxDB's collectd
    input does. Returns None for a NaN value (a missing sample).
    """
    value = float(value)
    if math.isnan(value):
        return None
    if math.isinf(value):
        raise ValueError(f'{measurement} {tags}: infinite value')
    tag_text = ''.join(
        f',{_escape_key(k, "tag key")}={_escape_key(v, "tag value")}'
        for k, v in sorted(tags.items()) if v not in (None, ''))
    return (f'{_escape_measurement(measurement)}{tag_text} '
            f'{FIELD}={value!r} {int(t)}')


class _Lines(list):
    def add(self, measurement, tags, value, t):
        line = point(measurement, tags, value, t)
        if line is not None:
            self.append(line)


def _is_given(value):
    return value is not None and not (isinstance(value, float)
                                      and math.isnan(value))


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f'{name}={value!r}; expected one of {choices}')


def _need_state(state, what):
    if state is None:
        raise ValueError(f'{what} is a counter: pass state={{}} (one dict '
                         f'reused across calls, in time order) so that '
                         f'consecutive samples accumulate')
    return state


def _elapsed(state, key, t):
    """Seconds since the previous sample of ``key`` (0 for the first)."""
    prev = state.get(key)
    state[key] = float(t)
    if prev is None:
        return 0.0
    dt = float(t) - prev
    if dt < 0:
        raise ValueError(f'{key}: time went backwards ({prev} -> {t}); '
                         f'render samples in time order')
    return dt


def _clamp_pct(value, what):
    value = float(value)
    if not 0.0 <= value <= 100.0 + 1e-9:
        raise ValueError(f'{what}={value} is not a percentage (0-100)')
    return min(value, 100.0)


# -- plugins ------------------------------------------------------------------

def _cpu_percent_lines(out, host, t, cpu_pct, full):
    """cpu plugin, ``ValuesPercentage true``, ``ReportByCpu false``."""
    used = _clamp_pct(cpu_pct, 'cpu_pct')
    values = {'user': 0.7 * used, 'system': 0.3 * used,
              'idle': 100.0 - used}
    for st in CPU_STATES:
        if st in values or full:
            out.add(CPU, {TAG_HOST: host, TAG_TYPE: TYPE_PERCENT,
                          TAG_TYPE_INSTANCE: st}, values.get(st, 0.0), t)


def _cpu_jiffies_lines(out, host, t, cpu_pct, n_cpus, state, full):
    """cpu plugin defaults: per-CPU jiffies counters (DERIVE)."""
    used = _clamp_pct(cpu_pct, 'cpu_pct') / 100.0
    n_cpus = int(n_cpus)
    if n_cpus < 1:
        raise ValueError(f'n_cpus={n_cpus} must be >= 1')
    dt = _elapsed(state, ('cpu_t', host), t)
    counters = state.setdefault(('cpu', host), {})
    ticks = dt * USER_HZ
    share = {'user': 0.7 * used, 'system': 0.3 * used, 'idle': 1.0 - used}
    for cpu in range(n_cpus):
        for st in CPU_STATES:
            # Start every counter at an arbitrary non-zero boot offset.
            c = counters.get((cpu, st), 1000.0 * (cpu + 1))
            c += share.get(st, 0.0) * ticks
            counters[(cpu, st)] = c
            if st in share or full:
                out.add(CPU, {TAG_HOST: host, TAG_INSTANCE: str(cpu),
                              TAG_TYPE: TYPE_CPU, TAG_TYPE_INSTANCE: st},
                        math.floor(c), t)


def _memory_states(mem_pct, mem_used_bytes, mem_total_bytes):
    """Split a host's memory into the memory plugin's type instances."""
    if not _is_given(mem_total_bytes):
        raise ValueError('mem_total_bytes is required with mem_pct or '
                         'mem_used_bytes')
    total = float(mem_total_bytes)
    if _is_given(mem_used_bytes):
        used = float(mem_used_bytes)
    else:
        used = _clamp_pct(mem_pct, 'mem_pct') / 100.0 * total
    if not 0 <= used <= total:
        raise ValueError(f'memory used {used} outside 0..total {total}')
    rest = total - used
    parts = {'used': used, 'buffered': 0.05 * rest, 'cached': 0.3 * rest,
             'slab_recl': 0.025 * rest, 'slab_unrecl': 0.025 * rest}
    parts['free'] = total - sum(parts.values())
    return parts, total


def _memory_lines(out, host, t, mem_pct, mem_used_bytes, mem_total_bytes,
                  mem_forms):
    """memory plugin: type memory (bytes) and/or type percent."""
    for form in mem_forms:
        _check_choice('mem_forms item', form, ('absolute', 'percent'))
    if not _is_given(mem_total_bytes):
        # Only the percentage is known: the percent form alone.
        if 'percent' in mem_forms:
            used = _clamp_pct(mem_pct, 'mem_pct')
            out.add(MEMORY, {TAG_HOST: host, TAG_TYPE: TYPE_PERCENT,
                             TAG_TYPE_INSTANCE: MEMORY_USED}, used, t)
            out.add(MEMORY, {TAG_HOST: host, TAG_TYPE: TYPE_PERCENT,
                             TAG_TYPE_INSTANCE: 'free'}, 100.0 - used, t)
        return
    parts, total = _memory_states(mem_pct, mem_used_bytes, mem_total_bytes)
    for st in MEMORY_STATES:
        if 'absolute' in mem_forms:
            out.add(MEMORY, {TAG_HOST: host, TAG_TYPE: TYPE_MEMORY,
                             TAG_TYPE_INSTANCE: st}, parts[st], t)
        if 'percent' in mem_forms:
            out.add(MEMORY, {TAG_HOST: host, TAG_TYPE: TYPE_PERCENT,
                             TAG_TYPE_INSTANCE: st},
                    100.0 * parts[st] / total, t)


def _pair_lines(out, host, t, meas_a, meas_b, type_, instance, a, b):
    for meas, v in ((meas_a, a), (meas_b, b)):
        if _is_given(v):
            out.add(meas, {TAG_HOST: host, TAG_INSTANCE: instance,
                           TAG_TYPE: type_}, v, t)


def host_lines(host, t, cpu_pct=None, mem_pct=None, mem_used_bytes=None,
               mem_total_bytes=None, load=None, disk_read_bytes_total=None,
               disk_write_bytes_total=None, net_rx_bytes_total=None,
               net_tx_bytes_total=None, cpu_form='percent', n_cpus=1,
               state=None, disk='vda', ifname='eth0', loopback=True,
               mem_forms=('absolute', 'percent'), full=True):
    """The points collectd on ``host`` sends at time ``t``, as stored.

    Arguments left as None (or NaN) produce no points for that plugin, which
    is how a missing sample looks. Byte counters are totals since boot (the
    caller accumulates them; a drop is a counter reset, as on reboot).

    :param cpu_form: ``'percent'`` (cpu plugin with ``ValuesPercentage
        true``, ``ReportByCpu false``: type ``percent``, no instance) or
        ``'jiffies'`` (the default cpu plugin: type ``cpu``, instance
        ``'0'``..``n_cpus-1``, counters at USER_HZ = 100; needs ``state``).
    :param state: a dict reused across calls (in time order) holding the
        counters that the jiffies form accumulates.
    :param loopback: also report interface ``lo`` (readers must ignore it).
    :param mem_forms: which memory plugin forms to report: ``'absolute'``
        (``ValuesAbsolute``, type ``memory``, bytes) and/or ``'percent'``
        (``ValuesPercentage``).
    :param full: also report the states/types readers do not use (nice,
        steal, disk_ops, if_packets, load_midterm, ...) as collectd does; turn
        off to write fewer points in large benchmarks.
    :returns: a list of line-protocol strings (precision: seconds)
    """
    _check_choice('cpu_form', cpu_form, CPU_FORMS)
    out = _Lines()
    if _is_given(cpu_pct):
        if cpu_form == 'percent':
            _cpu_percent_lines(out, host, t, cpu_pct, full)
        else:
            _cpu_jiffies_lines(out, host, t, cpu_pct, n_cpus,
                               _need_state(state, 'jiffies CPU'), full)
    if _is_given(mem_pct) or _is_given(mem_used_bytes):
        _memory_lines(out, host, t, mem_pct, mem_used_bytes, mem_total_bytes,
                      mem_forms)
    if _is_given(load):
        out.add(LOAD, {TAG_HOST: host, TAG_TYPE: TYPE_LOAD}, load, t)
        if full:
            for meas in (LOAD_MIDTERM, LOAD_LONGTERM):
                out.add(meas, {TAG_HOST: host, TAG_TYPE: TYPE_LOAD}, load, t)
    _pair_lines(out, host, t, DISK_READ, DISK_WRITE, TYPE_DISK_OCTETS, disk,
                disk_read_bytes_total, disk_write_bytes_total)
    if full:
        # Same measurements, other types: readers must filter on type.
        _pair_lines(out, host, t, DISK_READ, DISK_WRITE, TYPE_DISK_OPS, disk,
                    _ops(disk_read_bytes_total, 4096),
                    _ops(disk_write_bytes_total, 4096))
    _pair_lines(out, host, t, IF_RX, IF_TX, TYPE_IF_OCTETS, ifname,
                net_rx_bytes_total, net_tx_bytes_total)
    if full:
        _pair_lines(out, host, t, IF_RX, IF_TX, TYPE_IF_PACKETS, ifname,
                    _ops(net_rx_bytes_total, 1000),
                    _ops(net_tx_bytes_total, 1000))
    if loopback and (_is_given(net_rx_bytes_total)
                     or _is_given(net_tx_bytes_total)):
        # Loopback traffic: large, and not network I/O of the host.
        lo = 7.0 * (float(net_rx_bytes_total or 0)
                    + float(net_tx_bytes_total or 0)) + 123456.0
        _pair_lines(out, host, t, IF_RX, IF_TX, TYPE_IF_OCTETS, LOOPBACK,
                    lo, lo)
    return list(out)


def _ops(total, size):
    return math.floor(float(total) / size) if _is_given(total) else None


def instance_lines(uuid, t, cpu_pct, mem_used_bytes, form='guest', vcpus=1,
                   mem_total_bytes=None, cpu_form='percent', state=None,
                   full=True):
    """The points stored for one Nova instance (VNF) at time ``t``.

    In both forms the ``host`` tag is the instance UUID.

    * ``'guest'``: collectd runs inside the VNF with ``Hostname`` = UUID and
      reports ``cpu_value`` / ``memory_value`` exactly like a host
      (``cpu_form`` applies; ``vcpus`` is its CPU count).
    * ``'virt'``: the compute host's collectd ``virt`` plugin with
      ``HostnameFormat uuid``: ``virt_value`` type ``virt_cpu_total`` (CPU
      time in ns, a counter; needs ``state``), ``virt_vcpu`` per vCPU, and
      type ``memory`` with type instances ``total``, ``actual_balloon``,
      ``available``, ``unused``, ``usable``, ``rss`` (bytes).

    :param cpu_pct: CPU in use, percent of the instance's ``vcpus``.
    :param mem_used_bytes: memory the guest uses.
    :param mem_total_bytes: the flavor's memory (default: 1 GiB, or the use
        if larger).
    """
    _check_choice('form', form, INSTANCE_FORMS)
    if mem_total_bytes is None and _is_given(mem_used_bytes):
        mem_total_bytes = max(float(mem_used_bytes), 2.0 ** 30)
    if form == 'guest':
        return host_lines(uuid, t, cpu_pct=cpu_pct,
                          mem_used_bytes=mem_used_bytes,
                          mem_total_bytes=mem_total_bytes,
                          cpu_form=cpu_form, n_cpus=vcpus, state=state,
                          full=full)
    out = _Lines()
    vcpus = int(vcpus)
    if vcpus < 1:
        raise ValueError(f'vcpus={vcpus} must be >= 1')
    tags = {TAG_HOST: uuid}
    if _is_given(cpu_pct):
        state = _need_state(state, 'virt_cpu_total')
        used = _clamp_pct(cpu_pct, 'cpu_pct') / 100.0
        dt = _elapsed(state, ('virt_t', uuid), t)
        per_vcpu = used * dt * NS_PER_S
        total = state.get(('virt_cpu_total', uuid), 5e9) + per_vcpu * vcpus
        state[('virt_cpu_total', uuid)] = total
        out.add(VIRT, dict(tags, type=TYPE_VIRT_CPU_TOTAL), total, t)
        if full:
            for i in range(vcpus):
                key = ('virt_vcpu', uuid, i)
                state[key] = state.get(key, 5e9 / vcpus) + per_vcpu
                out.add(VIRT, dict(tags, type=TYPE_VIRT_VCPU,
                                   type_instance=str(i)), state[key], t)
    if _is_given(mem_used_bytes):
        total = float(mem_total_bytes)
        used = float(mem_used_bytes)
        if not 0 <= used <= total:
            raise ValueError(f'mem_used_bytes {used} outside 0..'
                             f'mem_total_bytes {total}')
        parts = {VIRT_MEMORY_TOTAL: total, 'actual_balloon': total,
                 VIRT_MEMORY_AVAILABLE: total,
                 VIRT_MEMORY_UNUSED: total - used, 'usable': total - used,
                 VIRT_MEMORY_RSS: used + 30 * 2.0 ** 20}
        for name, value in parts.items():
            if full or name in (VIRT_MEMORY_AVAILABLE, VIRT_MEMORY_UNUSED):
                out.add(VIRT, dict(tags, type=TYPE_MEMORY,
                                   type_instance=name), value, t)
    return list(out)
