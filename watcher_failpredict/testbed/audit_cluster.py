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

"""One audit of the strategy without any service: a cluster to run it on.

A real Watcher ``ModelRoot`` plus collectd-shaped metrics in the project's
``InMemoryDataSource`` (the same windows code as the InfluxDB datasource),
and :class:`MeanCpuRisk`, a transparent stand-in model (risk = mean CPU of
the last 300 s / 100) that makes each of the strategy's rules visible in
isolation. The strategy's unit tests, the random clusters of the safety
fuzz (:mod:`watcher_failpredict.testbed.random_clusters`) and
``bench/safety_fuzz.py`` build their clusters with it.
"""

import warnings

import numpy as np
from watcher.common import utils
from watcher.decision_engine.model import element
from watcher.decision_engine.model import model_root

from watcher_failpredict.datasources import memory
from watcher_failpredict.datasources import windows as metric_windows
from watcher_failpredict.prediction import risk_model
from watcher_failpredict.strategies import predicted_least_failure as plf

#: The audit's clock: every cluster's metrics end here.
NOW = 1_700_000_000.0
#: Seconds between two samples (collectd's interval).
STEP = 10
#: Seconds of samples written per resource.
HISTORY = 600
#: The stand-in model's metadata (the strategy checks its parameters
#: against it).
META = {'threshold': 90.0, 'period': 300, 'horizon': 600, 'window': 300,
        'granularity': STEP}


class MeanCpuRisk(risk_model.RankingRisk):
    """Stand-in model: risk is the mean CPU of the last 300 s / 100.

    ``calls`` counts the predictions asked of it.
    """

    def __init__(self):
        super().__init__(META)
        self.calls = 0

    def predict_risk(self, windows):
        self.calls += 1
        cpu = windows.data['cpu'][:, -30:]
        with np.errstate(invalid='ignore'), warnings.catch_warnings():
            # a host without samples is NaN: the strategy skips it
            warnings.simplefilter('ignore', RuntimeWarning)
            return np.clip(np.nanmean(cpu, axis=1) / 100.0, 0, 1)


def _series(value, n):
    if np.ndim(value) == 0:
        return np.full(n, float(value))
    value = np.asarray(value, dtype=float)
    if value.size != n:
        raise ValueError(f'a series of {n} samples is needed, '
                         f'got {value.size}')
    return value


#: Runnable demand per busy core the hosts report by default (host()).
DEMAND_PER_BUSY_CORE = 1.4


class Cluster:
    """A ModelRoot plus collectd-shaped metrics for it."""

    n = HISTORY // STEP

    def __init__(self):
        self.model = model_root.ModelRoot()
        self.ds = memory.InMemoryDataSource()
        self.times = NOW - HISTORY + STEP * np.arange(self.n)
        self.history = []

    def host(self, name, cpu, status='enabled', state='up', vcpus=12,
             memory=24576, disk=500, metrics=True, age=0, load=None):
        """Add a compute node reporting ``cpu`` (a value or a series of
        ``n`` samples) whose latest sample is ``age`` seconds old.

        ``load`` (runnable demand in cores, the load average) defaults to
        DEMAND_PER_BUSY_CORE times the busy cores: a busy host has work
        queued, so one in failure state starves its consumers (the
        strategy's speed_floor gate lets it be relieved).
        """
        node = element.ComputeNode(
            uuid=f'uuid-{name}', hostname=name, status=status, state=state,
            vcpus=vcpus, memory=memory, disk=disk, vcpu_reserved=0,
            memory_mb_reserved=0, disk_gb_reserved=0, vcpu_ratio=1.0,
            memory_ratio=1.0, disk_ratio=1.0)
        self.model.add_node(node)
        if metrics:
            t = self.times - age
            cpu = _series(cpu, self.n)
            if load is None:
                load = cpu / 100.0 * vcpus * DEMAND_PER_BUSY_CORE
            for metric, values in (('cpu', cpu), ('memory', 40.0),
                                   ('load', load), ('disk', 1e5),
                                   ('net', 1e6)):
                self.ds.add(metric_windows.COMPUTE_NODE, metric, name, t,
                            _series(values, self.n))
        return node

    def instance(self, uuid, host, cpu=50.0, vcpus=1, memory=1024, disk=10,
                 metrics=True, **fields):
        """Add an instance on ``host`` using ``cpu`` % of its vCPUs."""
        inst = element.Instance(uuid=uuid, name=f'vnf-{uuid}', vcpus=vcpus,
                                memory=memory, disk=disk, **fields)
        self.model.add_instance(inst)
        self.model.map_instance(inst, f'uuid-{host}')
        if metrics:
            self.ds.add(metric_windows.INSTANCE, 'cpu', uuid, self.times,
                        _series(cpu, self.n))
            self.ds.add(metric_windows.INSTANCE, 'memory', uuid, self.times,
                        _series(memory * 0.8, self.n))
        return inst

    def strategy(self, bundle=None, **params):
        """The strategy, ready to ``execute()`` on this cluster with the
        audit parameters ``params`` (Watcher fills the schema's defaults).
        """
        strategy = plf.PredictedLeastFailure(
            config=utils.Struct(datasources=None,
                                check_optimize_metadata=False),
            datasource=self.ds,
            model_bundle=MeanCpuRisk() if bundle is None else bundle,
            migration_history=lambda since: list(self.history),
            clock=lambda: NOW)
        strategy.compute_model = self.model
        strategy.input_parameters = utils.Struct(params)
        return strategy
