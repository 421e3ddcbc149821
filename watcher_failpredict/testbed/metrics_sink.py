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
hand the policy its backend's datasource with fresh caches. Before the
first, the part of the stretch before the run that the policy reads back
into (its load cycles, planned mode's history) is written too, as an
operator's backend would hold it and as the in-memory datasource serves
it.
"""

import math


class RunMetrics:
    """One run's metrics in a real backend; subclasses give ``reader`` (the
    run's datasource, created once) and ``write`` (the samples of steps
    ``[start_k, end_k)`` of a testbed into the backend).
    """

    written_k = 0
    before_written = False

    def reader(self, tb):
        raise NotImplementedError

    def write(self, tb, start_k, end_k):
        raise NotImplementedError

    def sync(self, tb, history=0.0):
        """Write what is new since the last call; returns the datasource.

        :param history: seconds the audit reads back: on the first call,
            what of them lies before the run is written from the stretch
            before it (``tb.before``), when the run has one
        """
        ds = self.reader(tb)
        if not self.before_written:
            self.before_written = True
            self._write_before(tb, history)
        per = int(round(tb.scn['metrics_interval'] / tb.dt))
        end_k = (tb.k // per) * per
        self.write(tb, self.written_k, end_k)
        self.written_k = max(self.written_k, end_k)
        # fresh per-audit caches, as a new audit finds them
        ds.reset_caches()
        return ds

    def _write_before(self, tb, history):
        """The last steps of ``tb.before`` that ``history`` seconds reach
        back into past the run's start (the first audit's reach is the
        longest: a later one reaches less far before the start).
        """
        before = tb.before
        need = int(math.ceil(history / tb.dt)) - tb.k
        if before is not None and need > 0:
            self.write(before, max(before.k - need, 0), before.k)

    def datasource(self, tb, history):
        """The policy's datasource hook: the backend keeps every sample of
        the run, and gets the ``history`` the first audit reaches back to.
        """
        return self.sync(tb, history)
