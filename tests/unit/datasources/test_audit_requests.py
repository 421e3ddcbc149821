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

"""An audit's InfluxDB requests do not grow with the cluster (issue 2).

A whole ``predicted_least_failure`` audit (``execute()``: every datasource
read, the scoring, the plan) runs against a real ``influxd`` holding
collectd-shaped history for clusters of 10 and of 200 compute nodes, built
by the decision-latency benchmark's own generator (``bench/cluster_data``),
with a model really trained by the project's training API. The test counts
the HTTP requests each audit makes.
"""

import os
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
BENCH = os.path.join(ROOT, 'bench')
if BENCH not in sys.path:
    sys.path.insert(0, BENCH)

import cluster_data  # noqa: E402
import decision_latency  # noqa: E402

from watcher_failpredict.datasources import influxdb as idb  # noqa: E402
from watcher_failpredict.datasources.influxdb import datasource  # noqa: E402

#: Instances per node, as in the benchmark: with fewer, the saturated nodes
#: would not reach the failure threshold.
PER_NODE = 20


@pytest.fixture(scope='module')
def trained_bundle(tmp_path_factory):
    return decision_latency.train_model(str(tmp_path_factory.mktemp('m')))[0]


def _audit(server, db, n_nodes, bundle):
    spec = cluster_data.ClusterSpec(nodes=n_nodes,
                                    instances_per_node=PER_NODE)
    now = time.time()
    # The model's window (600 s) plus a margin before "now", and enough
    # after it that no sample is stale while the test runs.
    cluster_data.write_history(server.url, db, spec, now - 720, now + 300,
                               now - 720)
    ds = decision_latency.datasource_for(idb, server.url, db)
    strategy = decision_latency.make_ours(cluster_data.build_model(spec), ds,
                                          bundle)
    before = ds.request_count
    solution = strategy.execute()
    moves = decision_latency.solution_summary(solution)
    return ds.request_count - before, moves, spec


def test_an_audit_makes_as_many_requests_at_200_hosts_as_at_10(
        influxdb_server, trained_bundle):
    counts = {}
    for n in (10, 200):
        db = f'audit_requests_{n}'
        influxdb_server.create_database(db)
        try:
            counts[n], moves, spec = _audit(influxdb_server, db, n,
                                            trained_bundle)
        finally:
            influxdb_server.query(f'DROP DATABASE "{db}"')
        # The audit did its job: it moved a VNF off a saturated node.
        saturated = set(spec.saturated_hosts)
        assert moves, n
        assert {src for src, _dst in moves} <= saturated, (n, moves)
    # Three reads (every host's windows; every host's disk and net means;
    # the saturated hosts' instances), each sent as QUERY_SPLIT concurrent
    # requests.
    assert counts[10] == counts[200] == 3 * datasource.QUERY_SPLIT, counts
