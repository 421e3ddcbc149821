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

"""What the strategy needs from a model: the :class:`RiskModel` protocol.

``predicted_least_failure`` ranks hosts with whatever object it is given
as its model: a trained :class:`bundle.ModelBundle` (the deployed case), a
forecasting baseline or the random ranking of :mod:`baseline_risk`, or the
testbed's oracle and seasonal rankings. They all implement this one
protocol, so the strategy calls the same methods on every one and probes
for nothing.

A model that has no peak regressor answers ``None`` for the peak, and the
strategy ranks equally risky destinations by the lower CPU now instead
(:mod:`ranking`). :class:`RankingRisk` is a base for such models: it
supplies everything but :meth:`RiskModel.predict_risk`.
"""

import typing

import numpy as np

#: The metadata entries the strategy reads, each optional (the audit's
#: parameters stand in for an absent one): the failure definition
#: ``threshold`` (CPU percent) and ``period`` (s), the prediction
#: ``horizon`` (s), the feature ``window`` (s, how much history is read),
#: the metrics ``granularity`` (s) and the ``model_kind`` (``fixed_hosts``
#: is refused for audits).
METADATA_KEYS = ('model_kind', 'threshold', 'period', 'horizon', 'window',
                 'granularity')


@typing.runtime_checkable
class RiskModel(typing.Protocol):
    """A ranking of hosts by their risk of failure within a horizon.

    ``metadata``: a mapping holding (some of) :data:`METADATA_KEYS`; the
    strategy checks the audit parameters against it.

    ``has_peak_model``: whether :meth:`predict_risk_and_peak` gives a
    predicted peak (else its second item is None).
    """

    metadata: typing.Mapping[str, typing.Any]

    @property
    def has_peak_model(self) -> bool:
        ...

    def predict_risk(self, windows) -> np.ndarray:
        """Risk of failure within the horizon per host of ``windows``.

        :param windows: ClusterWindows of host metrics (the strategy's
            read, a moved VNF's load already added where it plans one)
        :returns: float array ``(len(windows.names),)``, lower is safer;
            NaN for a host that cannot be evaluated (the strategy skips
            it). Trained bundles give a probability; rankings give any
            score in the same order of magnitude (a CPU share).
        """

    def predict_risk_and_peak(self, windows) -> tuple:
        """``(predict_risk(windows), peak)`` in one pass over the windows.

        ``peak``: float array ``(len(windows.names),)`` of the predicted
        future peak of each host's trigger-period mean CPU (percent;
        NaN where unknown), the destination ranking's second key; None
        when the model has no peak regressor.
        """


class RankingRisk:
    """Base of the risk models without a peak regressor.

    Subclasses implement :meth:`predict_risk`.
    """

    has_peak_model = False

    def __init__(self, metadata):
        self.metadata = dict(metadata)

    def predict_risk(self, windows):
        raise NotImplementedError(
            f'{type(self).__name__} does not implement predict_risk')

    def predict_risk_and_peak(self, windows):
        return self.predict_risk(windows), None
