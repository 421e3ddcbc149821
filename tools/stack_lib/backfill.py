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

"""Synthetic collectd history for the stack's nodes and VNFs.

Live collection starts when the stack comes up, so a freshly started stack
has minutes of data where a model needs hours. ``tools/stack backfill``
writes ``[start, end)`` (ending where live collection began, so no series
mixes synthetic and live points) for the same host names and instance UUIDs,
rendered by :mod:`watcher_failpredict.datasources.collectd_schema` exactly as
InfluxDB's collectd input stores collectd's values, with the load model the
live emulated agents use (:mod:`loadmodel`); the real node's history follows
its ``history`` spec in load.json.
"""

import random

from stack_lib import loadmodel
from watcher_failpredict.datasources import collectd_schema as schema


def backfill(stack, start, end, seed=0):
    topo = stack.topology()
    load = stack.load_spec()
    rng = random.Random(seed)
    step = 10
    lines = []
    for node in topo['compute_nodes']:
        name = node['hostname']
        spec = load.get('history', {}).get(name) or load['nodes'][name]
        mem_total = float(node['memory']) * 2 ** 20
        disk = net = 1e9
        for t in range(int(start), int(end), step):
            cpu = loadmodel.noisy(loadmodel.spec_cpu(spec, t), 1.5, rng)
            v = loadmodel.host_values(cpu, int(node['vcpus']), mem_total, rng)
            disk += v['disk_rate'] * step
            net += v['net_rate'] * step
            lines.extend(schema.host_lines(
                name, t, cpu_pct=cpu, mem_pct=v['mem_pct'],
                mem_total_bytes=mem_total, load=v['load'],
                disk_read_bytes_total=0.4 * disk,
                disk_write_bytes_total=0.6 * disk,
                net_rx_bytes_total=0.5 * net, net_tx_bytes_total=0.5 * net,
                full=False))
    for inst in topo['instances']:
        spec = load['instances'].get(inst['uuid'], {})
        for t in range(int(max(start, end - 1800)), int(end), step):
            cpu = loadmodel.noisy(float(spec.get('cpu', 30.0)), 1.0, rng)
            used = float(spec.get('memory_mib', 500.0)) * 2 ** 20
            lines.extend(schema.instance_lines(
                inst['uuid'], t, cpu_pct=cpu, mem_used_bytes=used,
                mem_total_bytes=float(inst['memory']) * 2 ** 20,
                vcpus=int(inst['vcpus']), full=False))
    influx = stack.influx_client()
    try:
        influx.write(lines, batch=20000)
    finally:
        influx.close()
    return len(lines)
