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

"""Wall-clock deadlines of metric reads.

A socket timeout bounds each blocking operation, not a request: a server
that trickles its answer one byte a second never lets a read time out. A
:class:`Deadline` is an instant on the monotonic clock that a whole request
(connect, send, every byte of the answer, retries included) or a whole set
of requests (every metric read of one audit, a training history read) must
finish by; :class:`DeadlineExceeded` says which one passed.
"""

import math
import time

from watcher_failpredict.datasources import windows as metric_windows


class DeadlineExceeded(metric_windows.MetricsUnavailable):
    """A read did not finish before its deadline (never retried)."""


def checked_seconds(seconds, what):
    """``seconds`` as a float; ValueError unless finite and positive."""
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f'{what}={seconds!r} must be a finite positive '
                         f'number of seconds')
    return value


class Deadline:
    """``seconds`` from now on the monotonic clock, named for messages.

    :param seconds: a finite positive number
    :param what: what the deadline bounds, e.g. "the audit's metrics read
        deadline ([failpredict] metrics_read_deadline)"
    :raises ValueError: seconds not finite or not positive
    """

    def __init__(self, seconds, what, clock=time.monotonic):
        self.seconds = checked_seconds(seconds, what)
        self.what = what
        self._clock = clock
        self.start = clock()
        self.at = self.start + seconds

    def __repr__(self):
        return f'Deadline({self.seconds!r}, {self.what!r})'

    def __str__(self):
        return f'{self.what} of {self.seconds:g} s'

    def remaining(self):
        """Seconds left (negative once passed)."""
        return self.at - self._clock()

    def elapsed(self):
        """Seconds since the deadline was set."""
        return self._clock() - self.start

    def passed(self):
        return self.remaining() <= 0

    @staticmethod
    def earliest(*deadlines):
        """The deadline of ``deadlines`` (None ignored) that passes first,
        or None.
        """
        given = [d for d in deadlines if d is not None]
        return min(given, key=lambda d: d.at) if given else None
