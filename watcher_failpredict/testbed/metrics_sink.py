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

"""What the testbed's real-backend metrics (:mod:`.influx`, :mod:`.prom`)
share: before each decision, write the samples made since the last one and
hand the policy its backend's datasource with fresh caches.
"""


class RunMetrics:
    """One run's metrics in a real backend; subclasses give ``reader`` (the
    run's datasource, created once) and ``write`` (the samples of steps
    ``[start_k, end_k)`` into the backend).
    """

    written_k = 0

    def reader(self, tb):
        raise NotImplementedError

    def write(self, tb, start_k, end_k):
        raise NotImplementedError

    def sync(self, tb):
        """Write what is new since the last call; returns the datasource."""
        ds = self.reader(tb)
        per = int(round(tb.scn['metrics_interval'] / tb.dt))
        end_k = (tb.k // per) * per
        self.write(tb, self.written_k, end_k)
        self.written_k = max(self.written_k, end_k)
        # fresh per-audit caches, as a new audit finds them
        ds.reset_caches()
        return ds

    def datasource(self, tb, history):
        """The policy's datasource hook: ``history`` is not needed, the
        backend keeps every sample of the run.
        """
        del history
        return self.sync(tb)
