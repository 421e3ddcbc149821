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

"""The failure_mitigation goal and its efficacy specification."""

import jsonschema
import pytest
from watcher.decision_engine.goal.efficacy import indicators as w_ind
from watcher.decision_engine.solution import efficacy

from watcher_failpredict.goals import failure_mitigation as fm

NAMES = ['hosts_in_failure', 'hosts_relieved', 'migrations_planned',
         'cluster_risk_before', 'cluster_risk_after', 'hosts_skipped']
#: indicators an older strategy version does not set
OPTIONAL = ['hosts_implausible_metrics', 'moves_not_worth',
            'hosts_starved', 'planned_on_forecast', 'ranked_by_model',
            'forecast_error']


def _values(**over):
    values = dict(hosts_in_failure=2, hosts_relieved=1, migrations_planned=1,
                  cluster_risk_before=2.5, cluster_risk_after=1.25,
                  hosts_skipped=0)
    values.update(over)
    return efficacy.IndicatorsMap(values)


def test_names():
    assert fm.FailureMitigation.get_name() == 'failure_mitigation'
    assert fm.FailureMitigation.get_display_name() == 'Failure mitigation'
    assert fm.FailureMitigation.get_translatable_display_name() == \
        'Failure mitigation'


def test_goal_loads_through_watcher_entry_point():
    from watcher.decision_engine.loading import default
    goal = default.DefaultGoalLoader().load('failure_mitigation')
    assert isinstance(goal, fm.FailureMitigation)
    assert goal.efficacy_specification.schema['required'] == NAMES


def test_indicator_specifications():
    spec = fm.FailureMitigation.get_efficacy_specification()
    specs = spec.get_indicators_specifications()
    assert [s.name for s in specs] == NAMES + OPTIONAL
    assert [s.name for s in specs if not s.required] == OPTIONAL
    for s in specs:
        assert isinstance(s, w_ind.IndicatorSpecification)
        assert isinstance(s.schema, dict)
        assert s.description
        # Watcher stores each in efficacy_indicators.description, a
        # String(255): a longer one fails the audit in MySQL
        assert len(s.description) <= 255, s.name
        assert len(s.name) <= 63, s.name
        jsonschema.Draft4Validator.check_schema(s.schema)
    units = {s.name: s.unit for s in specs}
    assert units['cluster_risk_before'] == 'hosts'
    assert units['hosts_in_failure'] is None
    # serialisable as Watcher stores it
    assert len(spec.serialize_indicators_specs()) > 100


def test_validation_accepts_and_rejects():
    spec = fm.FailureMitigation.get_efficacy_specification()
    spec.validate_efficacy_indicators(_values())
    with pytest.raises(jsonschema.ValidationError):
        spec.validate_efficacy_indicators(_values(hosts_relieved=-1))
    with pytest.raises(jsonschema.ValidationError):
        spec.validate_efficacy_indicators(_values(migrations_planned=1.5))
    bad = _values()
    del bad['cluster_risk_after']
    with pytest.raises(jsonschema.ValidationError):
        spec.validate_efficacy_indicators(bad)


def test_global_efficacy_leaves_out_hosts_not_worth_moving_off():
    spec = fm.FailureMitigation.get_efficacy_specification()
    out = spec.get_global_efficacy_indicator(efficacy.IndicatorsMap(dict(
        hosts_in_failure=3, hosts_relieved=1, moves_not_worth=1)))
    assert out[0].value == 50.0
    out = spec.get_global_efficacy_indicator(efficacy.IndicatorsMap(dict(
        hosts_in_failure=2, hosts_relieved=0, moves_not_worth=2)))
    assert out[0].value == 100.0
    spec.validate_efficacy_indicators(_values(moves_not_worth=1))
    with pytest.raises(jsonschema.ValidationError):
        spec.validate_efficacy_indicators(_values(moves_not_worth=-1))


def test_planned_mode_indicators_are_optional_and_checked():
    spec = fm.FailureMitigationSpecification()
    spec.validate_efficacy_indicators(_values(planned_on_forecast=1,
                                              forecast_error=12.5))
    spec.validate_efficacy_indicators(_values(ranked_by_model=0))
    for bad in ({'planned_on_forecast': -1}, {'planned_on_forecast': 0.5},
                {'ranked_by_model': 2.5}, {'ranked_by_model': -1},
                {'forecast_error': -0.1}, {'forecast_error': 'low'}):
        with pytest.raises(jsonschema.ValidationError):
            spec.validate_efficacy_indicators(_values(**bad))


@pytest.mark.parametrize('failing,relieved,expected', [
    (2, 1, 50.0), (4, 4, 100.0), (3, 0, 0.0), (0, 0, 100.0)])
def test_global_efficacy_relieved_ratio(failing, relieved, expected):
    spec = fm.FailureMitigation.get_efficacy_specification()
    out = spec.get_global_efficacy_indicator(
        _values(hosts_in_failure=failing, hosts_relieved=relieved))
    assert len(out) == 1
    assert isinstance(out[0], efficacy.Indicator)
    assert out[0].name == 'relieved_ratio'
    assert out[0].unit == '%'
    assert out[0].value == pytest.approx(expected)


def test_global_efficacy_without_indicators():
    spec = fm.FailureMitigation.get_efficacy_specification()
    assert spec.get_global_efficacy_indicator(None)[0].value == 100.0
