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

"""The synthetic cluster the decision-latency benchmark audits.

One function builds Watcher's compute model (:class:`ModelRoot`) of a
cluster and another produces the metric values collectd would have reported
for it, so that both strategies see the same hosts, the same instances and
the same history. Everything is deterministic (seeded), so two runs of the
benchmark audit the same cluster.

Shape, chosen to match the paper's testbed and the issue's benchmark spec:

* compute nodes of 16 vCPUs (vCPU allocation ratio 4), 64 GiB RAM (ratio
  1.5), 2 TB disk;
* 20 instances per node, 1 vCPU / 1 GiB VNFs as in the paper (one vCPU
  also makes the collectd ``virt`` plugin's CPU, a percentage of one vCPU,
  equal to the percentage of the instance's vCPUs that Watcher expects);
* one saturated node per 50 (node 0, 50, 100, ...; at least one): its
  instances demand about 120 % of its cores, so they get about 83 % of
  what they ask for and its load average is above its cores (the
  strategy's whether-to-move rule relieves it); the others run at 25-45 %.

Host CPU is derived from its instances' demand plus a little hypervisor
overhead, so Watcher's ``workload_balance`` (which sums instance CPU) and our
strategy (which reads host CPU) agree on which hosts are saturated.
"""

import dataclasses
import uuid

import numpy as np
from watcher.decision_engine.model import element
from watcher.decision_engine.model import model_root

NODE_VCPUS = 16
NODE_MEMORY_MB = 65536
NODE_DISK_GB = 2000
SATURATE_EVERY = 50
STEP = 10  # seconds between collectd samples

_NS = uuid.UUID('6f0a4f4e-5a0e-4d36-9c1b-0f0c2a8e7b11')


@dataclasses.dataclass(frozen=True)
class ClusterSpec:
    """Which cluster to build: sizes and the seed of its randomness."""

    nodes: int
    instances_per_node: int = 20
    seed: int = 0

    @property
    def instances(self):
        return self.nodes * self.instances_per_node

    def hostname(self, i):
        return f'compute-{i:05d}'

    def node_uuid(self, i):
        return str(uuid.uuid5(_NS, f'node-{self.nodes}-{i}'))

    def instance_uuid(self, i, j):
        return str(uuid.uuid5(_NS, f'inst-{self.nodes}-{i}-{j}'))

    def instance_vcpus(self, j):
        return 1

    def saturated(self, i):
        return i % SATURATE_EVERY == 0

    @property
    def saturated_hosts(self):
        return [self.hostname(i) for i in range(self.nodes)
                if self.saturated(i)]


def build_model(spec):
    """A fresh Watcher compute model of ``spec`` (a new object each call).

    Strategies mutate the model they plan on (``migrate_instance``), so
    every timed run gets its own copy built from the same spec.
    """
    model = model_root.ModelRoot()
    for i in range(spec.nodes):
        node = element.ComputeNode(
            uuid=spec.node_uuid(i), id=i, hostname=spec.hostname(i),
            status=element.ServiceState.ENABLED.value,
            state=element.ServiceState.ONLINE.value,
            disabled_reason=None,
            vcpus=NODE_VCPUS, vcpu_reserved=0, vcpu_ratio=4.0,
            memory=NODE_MEMORY_MB, memory_mb_reserved=512, memory_ratio=1.5,
            disk=NODE_DISK_GB, disk_gb_reserved=0, disk_ratio=1.0)
        model.add_node(node)
        for j in range(spec.instances_per_node):
            vcpus = spec.instance_vcpus(j)
            inst = element.Instance(
                uuid=spec.instance_uuid(i, j),
                name=f'vnf-{i:05d}-{j:02d}',
                state=element.InstanceState.ACTIVE.value,
                vcpus=vcpus, memory=1024 * vcpus, disk=10,
                metadata={}, project_id=str(uuid.uuid5(_NS, 'project')),
                locked=False, watcher_exclude=False,
                host=spec.hostname(i), hypervisor_hostname=spec.hostname(i))
            model.add_instance(inst)
            model.map_instance(inst, node)
    return model


@dataclasses.dataclass
class ClusterValues:
    """collectd-shaped values of a cluster over ``times`` (Unix seconds).

    Host arrays are ``(nodes, steps)`` in the units of
    :data:`watcher_failpredict.datasources.windows.HOST_METRICS` plus
    ``memory_used_bytes``; instance arrays ``(instances, steps)``.
    """

    times: np.ndarray
    host_cpu: np.ndarray
    host_memory_used: np.ndarray  # bytes
    host_load: np.ndarray
    host_disk: np.ndarray  # bytes/s, read + written
    host_net: np.ndarray  # bytes/s, rx + tx
    inst_cpu: np.ndarray  # percent of the instance's vCPUs
    inst_memory_mib: np.ndarray


def generate_values(spec, start, end, step=STEP, nodes=None):
    """Values of ``spec``'s hosts ``nodes`` (default: all) in [start, end).

    Done per block of nodes by the writer, so the whole cluster's history
    never sits in memory at once. Each node's randomness is seeded by its
    index, so blocks of any size give the same values.
    """
    nodes = range(spec.nodes) if nodes is None else nodes
    times = np.arange(int(start) // step * step, int(end), step,
                      dtype=np.int64)
    n_t = times.size
    k = spec.instances_per_node
    vcpus = np.array([spec.instance_vcpus(j) for j in range(k)], dtype=float)
    phase_t = (times - times[0]) / 1200.0 * 2 * np.pi  # 20-minute cycle
    hc, hm, hl, hd, hn, ic, im = [], [], [], [], [], [], []
    for i in nodes:
        rng = np.random.default_rng([spec.seed, spec.nodes, i])
        if spec.saturated(i):
            # instance demand ~120 % of the node's cores
            level = 1.2 * NODE_VCPUS / vcpus.sum() * 100
            base = rng.uniform(level - 3, level + 3, size=k)
        else:
            base = rng.uniform(15, 45, size=k)
        wave = 5 * np.sin(phase_t[None, :] + rng.uniform(0, 6.3, (k, 1)))
        asked = np.clip(base[:, None] + wave
                        + rng.normal(0, 2, (k, n_t)), 0, 100)
        mem_mib = (rng.uniform(500, 900, size=k) * vcpus)[:, None] \
            + rng.normal(0, 5, (k, n_t))
        demand = (asked * vcpus[:, None]).sum(axis=0) / 100  # cores
        # processor sharing: beyond the cores each instance gets its share
        cpu = asked * np.minimum(1.0, NODE_VCPUS / demand)[None, :]
        host_cpu = np.clip(np.minimum(demand, NODE_VCPUS) / NODE_VCPUS * 100
                           + 3 + rng.normal(0, 1, n_t), 0, 100)
        hc.append(host_cpu)
        hm.append((mem_mib.sum(axis=0) + 2048) * 1024 * 1024)
        hl.append(demand + np.abs(rng.normal(0, 0.3, n_t)))
        hd.append(np.abs(rng.normal(2e6, 4e5, n_t)))
        hn.append(np.abs(rng.normal(5e6, 1e6, n_t)))
        ic.append(cpu)
        im.append(mem_mib)
    return ClusterValues(
        times=times, host_cpu=np.array(hc), host_memory_used=np.array(hm),
        host_load=np.array(hl), host_disk=np.array(hd),
        host_net=np.array(hn), inst_cpu=np.concatenate(ic),
        inst_memory_mib=np.concatenate(im))


# -- writing the history into InfluxDB --------------------------------------

def _host_samples(spec, values, i_local, i, state):
    """collectd line protocol of host ``i`` over ``values.times``."""
    from watcher_failpredict.datasources import collectd_schema as cs
    host = spec.hostname(i)
    total = NODE_MEMORY_MB * 1024.0 * 1024.0
    # byte counters since boot: accumulate the per-second rates
    dt = np.diff(values.times, prepend=values.times[0] - STEP)
    disk = 1e9 + np.cumsum(values.host_disk[i_local] * dt)
    net = 1e9 + np.cumsum(values.host_net[i_local] * dt)
    lines = []
    for k, t in enumerate(values.times.tolist()):
        lines += cs.host_lines(
            host, t, cpu_pct=values.host_cpu[i_local, k],
            mem_used_bytes=values.host_memory_used[i_local, k],
            mem_total_bytes=total, load=values.host_load[i_local, k],
            disk_read_bytes_total=0.4 * disk[k],
            disk_write_bytes_total=0.6 * disk[k],
            net_rx_bytes_total=0.5 * net[k], net_tx_bytes_total=0.5 * net[k],
            cpu_form='percent', state=state, full=False,
            mem_forms=HOST_MEM_FORMS, loopback=False)
    return lines


#: memory plugin forms written for hosts: both, as collectd does with
#: etc/collectd/compute-host.conf (ValuesAbsolute + ValuesPercentage).
HOST_MEM_FORMS = ('absolute', 'percent')
#: instance metrics form written ('guest' or 'virt', [failpredict]
#: instance_metrics); 'virt' is 3 points per sample against 15 for 'guest'.
INSTANCE_FORM = 'virt'


def _instance_samples(spec, values, i_local, i, state, since):
    from watcher_failpredict.datasources import collectd_schema as cs
    k_per = spec.instances_per_node
    lines = []
    times = values.times.tolist()
    for j in range(k_per):
        row = i_local * k_per + j
        uuid_ = spec.instance_uuid(i, j)
        vcpus = spec.instance_vcpus(j)
        cpu = values.inst_cpu[row]
        mem = values.inst_memory_mib[row] * 1048576.0
        total = 1024.0 * vcpus * 1048576.0
        for k, t in enumerate(times):
            if t < since:
                continue
            lines += cs.instance_lines(
                uuid_, t, cpu[k], min(mem[k], total), form=INSTANCE_FORM,
                vcpus=vcpus, mem_total_bytes=total, state=state, full=False)
    return lines


def write_history(url, database, spec, start, end, instance_since,
                  block=10, batch=50000, progress=None):
    """Write ``spec``'s collectd history into ``database`` at ``url``.

    Hosts get every sample in [start, end); instances those in
    [instance_since, end). Lines are rendered by
    :mod:`watcher_failpredict.datasources.collectd_schema` a block of hosts
    at a time and posted in ``batch``-line requests by a writer thread, so
    rendering (Python) and ingestion (influxd) overlap.

    :param progress: callable(hosts_done, hosts_total, points_written)
    :returns: number of points written
    """
    import queue
    import threading

    from watcher_failpredict.datasources.influxdb import client

    influx = client.InfluxDBClient(url, database=database, timeout=300)
    todo = queue.Queue(maxsize=4)
    written = [0]
    errors = []

    def writer():
        while True:
            chunk = todo.get()
            if chunk is None:
                return
            if errors:
                continue
            try:
                written[0] += influx.write(chunk, batch=batch)
            except Exception as exc:  # reported by the producer
                errors.append(exc)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    state = {}
    try:
        for first in range(0, spec.nodes, block):
            nodes = range(first, min(first + block, spec.nodes))
            values = generate_values(spec, start, end, nodes=nodes)
            lines = []
            for i_local, i in enumerate(nodes):
                lines += _host_samples(spec, values, i_local, i, state)
                lines += _instance_samples(spec, values, i_local, i, state,
                                           instance_since)
            if errors:
                raise errors[0]
            todo.put(lines)
            if progress:
                progress(nodes.stop, spec.nodes, written[0])
    finally:
        todo.put(None)
        thread.join()
        influx.close()
    if errors:
        raise errors[0]
    return written[0]


# -- writing the history into Prometheus ------------------------------------

def write_prometheus_history(server, spec, start, end, instance_since,
                             block=50, progress=None):
    """Load ``spec``'s history into a loopback Prometheus, as exporters
    would have exposed it: the same values :func:`write_history` writes as
    collectd points, as node_exporter and libvirt exporter series
    (:mod:`watcher_failpredict.datasources.prometheus.exporter_schema`),
    rendered a block of hosts at a time into one OpenMetrics file and
    loaded by ``promtool`` (``server`` is a
    :class:`~watcher_failpredict.datasources.prometheus.local_server.
    PrometheusServer`, started or restarted on the new blocks).

    :param progress: callable(hosts_done, hosts_total, samples_rendered)
    :returns: number of samples loaded
    """
    from watcher_failpredict.datasources.prometheus import exporter_schema
    from watcher_failpredict.datasources.prometheus import local_server

    total = NODE_MEMORY_MB * 1024.0 * 1024.0
    count = [0]

    def chunks():
        for first in range(0, spec.nodes, block):
            nodes = range(first, min(first + block, spec.nodes))
            values = generate_values(spec, start, end, nodes=nodes)
            times = values.times.astype(float)
            keep = times >= instance_since
            series = []
            for i_local, i in enumerate(nodes):
                series += exporter_schema.host_series(
                    spec.hostname(i), times, values.host_cpu[i_local],
                    100.0 * values.host_memory_used[i_local] / total,
                    values.host_load[i_local], values.host_disk[i_local],
                    values.host_net[i_local], mem_total_bytes=total,
                    loopback=False)
                for j in range(spec.instances_per_node):
                    row = i_local * spec.instances_per_node + j
                    vcpus = spec.instance_vcpus(j)
                    mem_total = 1024.0 * vcpus * 1048576.0
                    mem = np.minimum(
                        values.inst_memory_mib[row] * 1048576.0, mem_total)
                    series += exporter_schema.instance_series(
                        spec.instance_uuid(i, j), times[keep],
                        values.inst_cpu[row][keep], mem[keep], vcpus=vcpus,
                        mem_total_bytes=mem_total, full=False)
            count[0] += sum(len(s[2]) for s in series)
            yield ''.join(local_server.openmetrics_lines(series))
            if progress is not None:
                progress(nodes[-1] + 1, spec.nodes, count[0])
        yield '# EOF\n'

    server.load_chunks(chunks())
    if not server.running:
        server.start()
    return count[0]
