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

"""The embedded datasource: metrics held in memory.

Used by the testbed (which produces its own metrics) and by tests of the
strategy. It answers exactly like the InfluxDB datasource, through the same
:class:`~watcher_failpredict.datasources.base.WindowsDataSource` code.
"""

import numpy as np

from watcher_failpredict.datasources import base
from watcher_failpredict.datasources import windows as metric_windows

NAME = 'failpredict_memory'


class InMemoryDataSource(base.WindowsDataSource):
    NAME = NAME

    def __init__(self):
        super().__init__()
        # (resource_type, metric) -> {name: (times list, values list)}
        self._store = {}
        self.fetch_count = 0
        self.available = True

    def add(self, resource_type, metric, name, times, values):
        """Append samples (times in Unix seconds) of one resource's metric."""
        known = dict(metric_windows.METRICS_BY_TYPE[resource_type])
        if resource_type == metric_windows.COMPUTE_NODE:
            known['memory_kib'] = 'host memory used, KiB'
        if metric not in known:
            raise ValueError(f'unknown {resource_type} metric {metric!r}; '
                             f'known: {sorted(known)}')
        times = np.asarray(times, dtype=float)
        values = np.asarray(values, dtype=float)
        if times.shape != values.shape:
            raise ValueError(f'{name}/{metric}: {times.size} times but '
                             f'{values.size} values')
        per_name = self._store.setdefault((resource_type, metric), {})
        old_t, old_v = per_name.get(name, (np.empty(0), np.empty(0)))
        per_name[name] = (np.concatenate([old_t, times]),
                          np.concatenate([old_v, values]))

    def check_availability(self):
        return 'available' if self.available else 'not available'

    def fetch(self, resource_type, metrics, names, start, end, granularity,
              bulk=False):
        self.fetch_count += 1
        if not self.available:
            raise metric_windows.MetricsUnavailable(
                'in-memory datasource switched off')
        out = {}
        for metric in metrics:
            per_name = self._store.get((resource_type, metric), {})
            selected = {}
            for name, (t, v) in per_name.items():
                if names is not None and name not in names:
                    continue
                keep = (t >= start) & (t < end)
                selected[name] = (t[keep], v[keep])
            out[metric] = selected
        return out
