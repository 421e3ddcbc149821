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

"""Why an audit of ``predicted_least_failure`` fails.

Each is a ``WatcherException``: the decision engine marks the audit FAILED
with the message, and no action plan is written.
"""

from watcher.common import exception


class FailurePredictionError(exception.WatcherException):
    """The audit cannot be decided safely; Watcher marks it FAILED."""

    msg_fmt = '%(reason)s'


class ModelUnavailable(FailurePredictionError):
    """No usable failure-prediction model."""


class NoEvaluableHost(FailurePredictionError):
    """No host of the audit scope has metrics a decision can rely on."""


class MetricsReadFailed(FailurePredictionError):
    """The metrics backend could not be read."""


class IncompatibleParameters(FailurePredictionError):
    """The audit parameters contradict the model."""


class InvalidParameter(FailurePredictionError):
    """An audit parameter is of the wrong type or outside its range."""
