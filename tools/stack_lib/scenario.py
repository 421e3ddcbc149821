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

"""The stack's cluster: topology (Nova/Placement emulators) and load specs.

Six compute nodes of 12 vCPUs / 24 GiB and 1 vCPU / 1 GiB VNFs, the same
roles as the functional tests' scenario (tests/functional/base.py), so that
a model trained on this history faces the decision those tests check:

========== ===================================================
compute-1  the *real* node: collectd's own cpu/memory/load/disk/interface
           plugins report this machine; ``tools/stack stress on`` runs
           stress-ng (nice 19, every CPU, 24 workers) to saturate it and
           starve its consumers. History: ~95 %.
compute-2  square wave (12 % / 99 %, 20 min cycle, 7 min high)
compute-3  calm, 35 %
compute-4  60 %, no free vCPU (12 VNFs)
compute-5  87 %, compute-6 84 %: busy
========== ===================================================

UUIDs are uuid5 of the names, so they are stable across ``up`` runs.
"""

import uuid

REAL_NODE = 'compute-1'
NODE_VCPUS = 12
NODE_MEMORY_MB = 24 * 1024
VNF_MEMORY_MB = 1024
_NS = uuid.UUID('6c3f8a52-5b0e-4a56-9d3a-1f0c2b7e9a10')

# node -> (live load spec, history spec, [(vnf cpu %, memory MiB), ...])
NODES = (
    ('compute-1', {'kind': 'real'}, {'kind': 'flat', 'level': 95.0},
     [(90.0, 300.0), (30.0, 700.0), (30.0, 700.0), (30.0, 700.0)]),
    ('compute-2', None, None, [(20.0, 500.0)] * 2),
    ('compute-3', {'kind': 'flat', 'level': 35.0}, None, [(40.0, 600.0)] * 2),
    ('compute-4', {'kind': 'flat', 'level': 60.0}, None, [(50.0, 600.0)] * 12),
    ('compute-5', {'kind': 'flat', 'level': 87.0}, None, [(60.0, 600.0)] * 3),
    ('compute-6', {'kind': 'flat', 'level': 84.0}, None, [(60.0, 600.0)] * 3),
)


def square(rise_at):
    """compute-2's pattern, its next rise at ``rise_at`` (epoch s)."""
    return {'kind': 'square', 'low': 12.0, 'high': 99.0, 'cycle': 1200,
            'high_len': 420, 'rise_at': float(rise_at)}


def stable_uuid(name):
    return str(uuid.uuid5(_NS, name))


def topology():
    """The emulators' JSON topology (watcher base_emulator.load_from_json)."""
    nodes, instances, n = [], [], 0
    for hostname, _live, _hist, vnfs in NODES:
        nodes.append({'uuid': stable_uuid(hostname), 'hostname': hostname,
                      'vcpus': NODE_VCPUS, 'memory': NODE_MEMORY_MB,
                      'disk': 500, 'state': 'up', 'status': 'enabled'})
        for _cpu, _mem in vnfs:
            n += 1
            name = 'vm-%d' % n
            instances.append({'uuid': stable_uuid(name), 'name': name,
                              'host': hostname, 'vcpus': 1,
                              'memory': VNF_MEMORY_MB, 'disk': 10,
                              'state': 'active'})
    return {'compute_nodes': nodes, 'instances': instances}


def initial_load(now):
    """load.json: live specs per node, per-VNF load.

    ``history`` holds the spec ``tools/stack backfill`` renders for nodes
    whose live values are not modelled (the real node); other nodes'
    history follows their live spec.
    """
    nodes, history, inst, n = {}, {}, {}, 0
    for hostname, live, hist, vnfs in NODES:
        live = live or square(now + 1800)
        nodes[hostname] = live
        if hist is not None:
            history[hostname] = hist
        for cpu, mem in vnfs:
            n += 1
            inst[stable_uuid('vm-%d' % n)] = {'name': 'vm-%d' % n,
                                              'cpu': cpu, 'memory_mib': mem}
    return {'real_node': REAL_NODE, 'nodes': nodes, 'history': history,
            'instances': inst}
