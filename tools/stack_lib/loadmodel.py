#!/usr/bin/python3
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

"""Per-node load model for the one-machine stack, as a collectd exec program.

Why this exists: every collectd agent on one machine reads the same
``/proc/stat``, so six agents with six ``Hostname`` values would all report
the same CPU. The stack therefore runs one *real* collectd agent per emulated
compute node, but only one node (``real`` in ``load.json``) reports the
machine through collectd's own cpu/memory/load/disk/interface plugins, with
``stress-ng`` driving its CPU to saturation. Every other node's agent runs
this program through collectd's ``exec`` plugin: it prints ``PUTVAL`` lines
with exactly the identifiers the cpu (``ValuesPercentage true``,
``ReportByCpu false``), memory, load, disk and interface plugins would use,
so collectd's network plugin and InfluxDB's collectd input store them like
any other host's values. The values follow the node's load spec in
``load.json`` (re-read every interval, so ``tools/stack load`` changes a
node's load while the stack runs).

``--guests`` emulates collectd inside the VNF images (``Hostname`` = the
Nova instance UUID): one agent reports every instance of ``topology.json``.

The same functions render the synthetic history (``tools/stack backfill``),
so the history and the live values come from one model. Standard library
only: collectd runs it as ``nobody`` with the system Python.
"""

import argparse
import json
import math
import os
import random
import sys
import time

#: cpu plugin states, /proc/stat order (ReportByState true).
CPU_STATES = ('user', 'nice', 'system', 'idle', 'wait', 'interrupt',
              'softirq', 'steal')
MEMORY_STATES = ('used', 'buffered', 'cached', 'free', 'slab_recl',
                 'slab_unrecl')


def spec_cpu(spec, t):
    """Noise-free CPU percent of a load spec at time ``t`` (epoch s).

    Kinds: ``flat`` (``level``); ``square`` (``low`` for ``cycle -
    high_len`` s, then ``high`` for ``high_len`` s; a rise at ``rise_at``
    and every ``cycle`` s from it).
    """
    kind = spec.get('kind', 'flat')
    if kind == 'flat':
        return float(spec['level'])
    if kind == 'square':
        phase = math.fmod(t - float(spec['rise_at']), float(spec['cycle']))
        if phase < 0:
            phase += float(spec['cycle'])
        return float(spec['high'] if phase < float(spec['high_len'])
                     else spec['low'])
    raise ValueError('unknown load kind %r (flat, square)' % kind)


def noisy(value, sd, rng):
    return min(100.0, max(0.0, value + rng.gauss(0.0, sd)))


def host_values(cpu, vcpus, memory_bytes, rng):
    """Memory %, load and byte rates that follow CPU loosely, as on a server.

    The same relations as the functional tests' history
    (tests/functional/base.py), so that a model trained on either sees one
    kind of host.
    """
    mem_pct = min(99.0, max(1.0, 35.0 + 0.2 * cpu + rng.gauss(0, 1.0)))
    return {
        'mem_pct': mem_pct,
        'mem_used': mem_pct / 100.0 * memory_bytes,
        'load': vcpus * cpu / 100.0 + max(0.0, rng.gauss(0, 0.2)),
        'disk_rate': 2e6 + 3e4 * cpu + max(0.0, rng.gauss(0, 1e5)),
        'net_rate': 5e6 + 1e5 * cpu + max(0.0, rng.gauss(0, 1e5)),
    }


def memory_parts(used, total):
    rest = total - used
    parts = {'used': used, 'buffered': 0.05 * rest, 'cached': 0.3 * rest,
             'slab_recl': 0.025 * rest, 'slab_unrecl': 0.025 * rest}
    parts['free'] = total - sum(parts.values())
    return parts


def putval(host, ident, t, interval, *values):
    vals = ':'.join('%d' % v if isinstance(v, int) else '%.6f' % v
                    for v in values)
    return 'PUTVAL "%s/%s" interval=%d %d:%s' % (
        host, ident, interval, int(t), vals)


def cpu_lines(host, t, interval, cpu):
    share = {'user': 0.7 * cpu, 'system': 0.3 * cpu, 'idle': 100.0 - cpu}
    return [putval(host, 'cpu/percent-%s' % st, t, interval,
                   share.get(st, 0.0)) for st in CPU_STATES]


def memory_lines(host, t, interval, used, total):
    parts = memory_parts(used, total)
    out = []
    for st in MEMORY_STATES:
        out.append(putval(host, 'memory/memory-%s' % st, t, interval,
                          parts[st]))
        out.append(putval(host, 'memory/percent-%s' % st, t, interval,
                          100.0 * parts[st] / total))
    return out


class NodeEmulator:
    """One emulated compute node: its spec, its counters, its PUTVALs."""

    def __init__(self, name, vcpus, memory_bytes, seed=None):
        self.name = name
        self.vcpus = vcpus
        self.memory_bytes = memory_bytes
        self.rng = random.Random(seed)
        # Byte counters since "boot"; DERIVE values are integers.
        self.disk = [10 ** 9, 10 ** 9]
        self.net = [10 ** 9, 10 ** 9]

    def lines(self, spec, t, interval):
        cpu = noisy(spec_cpu(spec, t), float(spec.get('noise', 1.5)),
                    self.rng)
        v = host_values(cpu, self.vcpus, self.memory_bytes, self.rng)
        self.disk[0] += int(0.4 * v['disk_rate'] * interval)
        self.disk[1] += int(0.6 * v['disk_rate'] * interval)
        self.net[0] += int(0.5 * v['net_rate'] * interval)
        self.net[1] += int(0.5 * v['net_rate'] * interval)
        h = self.name
        return (cpu_lines(h, t, interval, cpu)
                + memory_lines(h, t, interval, v['mem_used'],
                               self.memory_bytes)
                + [putval(h, 'load/load', t, interval, v['load'],
                          v['load'], v['load']),
                   putval(h, 'disk-vda/disk_octets', t, interval,
                          *self.disk),
                   putval(h, 'interface-eth0/if_octets', t, interval,
                          *self.net)])


def guest_lines(instances, specs, t, interval, rng):
    """collectd in every VNF image: Hostname = instance UUID."""
    out = []
    for inst in instances:
        spec = specs.get(inst['uuid'], {})
        cpu = noisy(float(spec.get('cpu', 30.0)), 1.0, rng)
        total = float(inst['memory']) * 2 ** 20
        used = min(total, max(0.0, float(spec.get('memory_mib', 500.0))
                              * 2 ** 20 + rng.gauss(0, 5.0 * 2 ** 20)))
        out += cpu_lines(inst['uuid'], t, interval, cpu)
        out += memory_lines(inst['uuid'], t, interval, used, total)
    return out


def _load_json(path):
    with open(path) as f:
        return json.load(f)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--stack-dir', required=True)
    p.add_argument('--node', help='emulated compute node hostname')
    p.add_argument('--guests', action='store_true',
                   help='report every instance (collectd in the VNFs)')
    p.add_argument('--interval', type=int, default=10)
    args = p.parse_args(argv)
    topo = _load_json(os.path.join(args.stack_dir, 'topology.json'))
    load_path = os.path.join(args.stack_dir, 'load.json')
    emulator = None
    if args.node:
        node = [n for n in topo['compute_nodes']
                if n['hostname'] == args.node]
        if not node:
            sys.exit('loadmodel: node %r not in topology.json' % args.node)
        emulator = NodeEmulator(args.node, int(node[0]['vcpus']),
                                float(node[0]['memory']) * 2 ** 20)
    rng = random.Random()
    while True:
        now = time.time()
        t = int(now // args.interval * args.interval)
        try:
            load = _load_json(load_path)
            if emulator is not None:
                lines = emulator.lines(load['nodes'][args.node], t,
                                       args.interval)
            else:
                lines = guest_lines(topo['instances'],
                                    load.get('instances', {}), t,
                                    args.interval, rng)
            sys.stdout.write('\n'.join(lines) + '\n')
            sys.stdout.flush()
        except (OSError, ValueError, KeyError) as exc:
            # collectd logs our stderr; keep going (load.json may be
            # mid-rewrite, though tools/stack replaces it atomically).
            sys.stderr.write('loadmodel: %s\n' % exc)
            sys.stderr.flush()
        time.sleep(max(0.5, t + args.interval - time.time() + 0.05))


if __name__ == '__main__':
    main()
