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

"""The ``failure_mitigation`` goal and its efficacy specification.

The indicators are what an operator judges an action plan by (Watcher's API
shows them on the plan): how many hosts are in failure state now, how many
the plan relieves, how many migrations it costs, and how the cluster's
predicted failure risk changes.

Cluster risk is the *expected number of hosts in failure state* within the
model's horizon, i.e. the sum of the per-host predicted probabilities over
the hosts that could be evaluated (unit: hosts). A sum, unlike a mean, does
not shrink when healthy hosts are added, and reads directly as "about this
many hosts will be failing".
"""

from watcher.decision_engine.goal import base
from watcher.decision_engine.goal.efficacy import base as efficacy_base
from watcher.decision_engine.goal.efficacy import indicators
from watcher.decision_engine.solution import efficacy


class _Count(indicators.IndicatorSpecification):
    """A non-negative integer indicator."""

    def __init__(self, name, description, unit=None, required=True):
        super().__init__(name=name, description=description, unit=unit,
                         required=required)

    @property
    def schema(self):
        return {'type': 'integer', 'minimum': 0}


class _Risk(indicators.IndicatorSpecification):
    """A non-negative expected number of failing hosts."""

    def __init__(self, name, description):
        super().__init__(name=name, description=description, unit='hosts',
                         required=True)

    @property
    def schema(self):
        return {'type': 'number', 'minimum': 0}


class _Percent(indicators.IndicatorSpecification):
    """A non-negative optional percentage."""

    def __init__(self, name, description):
        super().__init__(name=name, description=description, unit='%',
                         required=False)

    @property
    def schema(self):
        return {'type': 'number', 'minimum': 0}


class FailureMitigationSpecification(efficacy_base.EfficacySpecification):
    """Indicators of a failure_mitigation action plan."""

    def get_indicators_specifications(self):
        return [
            _Count('hosts_in_failure',
                   'Hosts in failure state (mean CPU over the trigger '
                   'period at or above the threshold) at audit time.'),
            _Count('hosts_relieved',
                   'Failing hosts whose projected mean CPU once the plan '
                   'is applied is below the threshold.'),
            _Count('migrations_planned',
                   'Live migrations in the plan.'),
            _Risk('cluster_risk_before',
                  'Expected number of hosts in failure state within the '
                  'model horizon before the plan (sum of the predicted '
                  'per-host probabilities of the evaluated hosts).'),
            _Risk('cluster_risk_after',
                  'Expected number of hosts in failure state within the '
                  'model horizon once the plan is applied.'),
            _Count('hosts_skipped',
                   'Hosts that could not be evaluated (missing or stale '
                   'metrics, or the model could not score them): never '
                   'a source nor a destination. The decision engine log '
                   'names them and says why.'),
            _Count('hosts_implausible_metrics',
                   'Hosts among hosts_skipped because a reading was '
                   'outside its physical range (CPU or memory beyond '
                   '0-100 %, negative or infinite rates): garbage is '
                   'never taken for an idle host. The decision engine log '
                   'names each reading.', required=False),
            _Count('moves_not_worth',
                   'Hosts in failure state left as they are: a move would '
                   'cost their VNFs more than it spares them (move_rule; '
                   'planned mode: by the forecast). The decision engine '
                   'log says why for each.', required=False),
            _Count('hosts_starved',
                   'Hosts below the threshold whose consumers got less '
                   'than speed_floor of the CPU they ask for over the last '
                   'starved_window seconds: relieved like hosts in failure '
                   'state, not counted in hosts_in_failure.',
                   required=False),
            _Count('planned_on_forecast',
                   'Planned mode: 1 when the plan rests on the forecast '
                   'of the look-ahead, 0 when it missed by more than '
                   'forecast_tolerance (or could not be checked) and the '
                   'reactive rules decided (ranking by fallback_ranking). '
                   'The log says why.', required=False),
            _Count('ranked_by_model',
                   'Reactive mode: 1 when the trained model ranked the '
                   'destinations, 0 when the ranking check found its first '
                   'picks of one look-ahead ago ran busier than least-CPU\'s '
                   'and CPU now ranked them; absent when not checked.',
                   required=False),
            _Percent('forecast_error',
                     'Planned mode: the mean absolute error of the '
                     'forecast it would have made one look-ahead ago, '
                     'against what followed, as a percentage of the '
                     'hosts\' cores (averaged over the hosts).'),
        ]

    def get_global_efficacy_indicator(self, indicators_map=None):
        failing = 0
        relieved = 0
        if indicators_map:
            # hosts the gate left alone on purpose are not failures of
            # the plan
            failing = (indicators_map.get('hosts_in_failure', 0) or 0) - \
                (indicators_map.get('moves_not_worth', 0) or 0)
            relieved = indicators_map.get('hosts_relieved', 0) or 0
        value = 100.0 if failing <= 0 else 100.0 * relieved / failing
        return [efficacy.Indicator(
            name='relieved_ratio',
            description='Share of the hosts in failure state whose VNFs '
                        'are starved (not counted in moves_not_worth) '
                        'that the plan relieves (100 % when there is '
                        'none).',
            unit='%',
            value=value,
        )]


class FailureMitigation(base.Goal):
    """Failure mitigation

    Keep compute hosts out of failure state (saturated CPU) by moving
    workloads (VNFs) off failing hosts to the hosts least likely to fail.
    """

    @classmethod
    def get_name(cls):
        return 'failure_mitigation'

    @classmethod
    def get_display_name(cls):
        return 'Failure mitigation'

    @classmethod
    def get_translatable_display_name(cls):
        return 'Failure mitigation'

    @classmethod
    def get_efficacy_specification(cls):
        return FailureMitigationSpecification()
