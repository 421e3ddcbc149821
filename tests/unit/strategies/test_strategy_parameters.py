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

"""Audit parameters: refused by the schema at the API and by the strategy
itself (issue 14 points 4 and 5).
"""

import json

import jsonschema
import pytest
from watcher.common import exception
from watcher.common import utils

from tests.unit.strategies.test_strategy import _simple as failing_cluster
from tests.unit.strategies.test_strategy import moves
from watcher_failpredict.strategies import errors
from watcher_failpredict.strategies import parameters
from watcher_failpredict.strategies import predicted_least_failure as plf

SCHEMA = plf.PredictedLeastFailure.get_schema()
NAN = float('nan')
INF = float('inf')


def _validate(params):
    """As Watcher's API does, after json.loads of the request body."""
    utils.StrictDefaultValidatingDraft4Validator(SCHEMA).validate(params)
    return params


# -- the schema (Watcher's API) -----------------------------------------------


@pytest.mark.parametrize('body', [
    '{"threshold": NaN}', '{"risk_threshold": NaN}', '{"cost_weight": NaN}',
    '{"threshold": Infinity}', '{"threshold": -Infinity}',
    '{"cost_weight": Infinity}', '{"risk_threshold": Infinity}',
    '{"period": NaN}', '{"period": Infinity}', '{"horizon": NaN}',
    '{"cooldown": Infinity}', '{"max_migrations": NaN}',
    '{"speed_floor": NaN}', '{"speed_floor": Infinity}',
])
def test_schema_refuses_nan_and_infinity_from_json(body):
    with pytest.raises(jsonschema.ValidationError):
        _validate(json.loads(body))


@pytest.mark.parametrize('bad', [
    {'period': 86401}, {'period': 10 ** 8}, {'granularity': 3601},
    {'horizon': 86401}, {'max_migrations': 1001},
    {'cooldown': 7 * 86400 + 1}, {'cooldown': 10 ** 11},
    {'cost_weight': 1000.5}, {'cost_weight': -0.1},
    {'risk_threshold': 1.01}, {'mode': 'PROACTIVE'},
    {'speed_floor': 1.01}, {'speed_floor': -0.1},
    {'starved_window': -1}, {'starved_window': 86401},
    {'starved_window': 60.5},
    {'instance_choice': 'MOST_RELIEF'}, {'instance_choice': None},
    {'fallback_ranking': 'cpu'}, {'fallback_ranking': None},
    {'planner_forecast': 'arima'}, {'planner_forecast': None},
    {'forecast_timing_margin': -1}, {'forecast_timing_margin': 3601},
    {'forecast_timing_margin': 30.5}, {'forecast_timing_margin': '300'},
    {'ranking_check': 'yes'}, {'ranking_check': 1}, {'ranking_check': None},
])
def test_schema_refuses_values_above_their_bound(bad):
    with pytest.raises(jsonschema.ValidationError):
        _validate(bad)


@pytest.mark.parametrize('good', [
    {'threshold': 0}, {'threshold': 1e-9}, {'threshold': 0.5},
    {'threshold': 1}, {'threshold': 99.999}, {'threshold': 100},
    {'period': 86400}, {'granularity': 3600}, {'horizon': 86400},
    {'max_migrations': 1000}, {'cooldown': 0}, {'cooldown': 7 * 86400},
    {'risk_threshold': 0}, {'risk_threshold': 1}, {'cost_weight': 0},
    {'cost_weight': 1000}, {'mode': 'proactive'}, {'speed_floor': 0},
    {'speed_floor': 1}, {'starved_window': 0}, {'starved_window': 86400},
    {'instance_choice': 'cheapest_ending'},
    {'instance_choice': 'most_relief'},
    {'fallback_ranking': 'current_cpu'}, {'fallback_ranking': 'model'},
    {'planner_forecast': 'seasonal'}, {'planner_forecast': 'analog'},
    {'forecast_timing_margin': 0}, {'forecast_timing_margin': 3600},
    {'forecast_timing_margin': None},
    {'ranking_check': True}, {'ranking_check': False},
])
def test_schema_keeps_accepting_every_finite_value_in_range(good):
    params = _validate(dict(good))
    for key, value in good.items():
        assert params[key] == value


# -- the strategy's own checks ------------------------------------------------


@pytest.mark.parametrize('params,message', [
    ({'threshold': NAN}, 'audit parameter threshold must be a finite number '
                         'from 0 to 100, got nan'),
    ({'risk_threshold': NAN, 'mode': 'proactive'},
     'audit parameter risk_threshold must be a finite number from 0 to 1, '
     'got nan'),
    ({'cost_weight': INF}, 'audit parameter cost_weight must be a finite '
                           'number from 0 to 1000, got inf'),
    ({'speed_floor': NAN}, 'audit parameter speed_floor must be a finite '
                           'number from 0 to 1, got nan'),
    ({'mode': 'PROACTIVE'}, "audit parameter mode must be one of "
                            "'reactive', 'proactive', 'planned', got "
                            "'PROACTIVE'"),
    ({'instance_choice': 'largest'},
     "audit parameter instance_choice must be one of 'most_relief', "
     "'cheapest_ending', got 'largest'"),
    ({'fallback_ranking': 'trained', 'mode': 'planned'},
     "audit parameter fallback_ranking must be one of 'current_cpu', "
     "'model', got 'trained'"),
    ({'planner_forecast': 'arima', 'mode': 'planned'},
     "audit parameter planner_forecast must be one of 'seasonal_or_analog', "
     "'seasonal', 'analog', got 'arima'"),
    ({'forecast_timing_margin': -60, 'mode': 'planned'},
     'audit parameter forecast_timing_margin must be null or an integer '
     'from 0 to 3600, got -60'),
    ({'ranking_check': 1}, 'audit parameter ranking_check must be true or '
                           'false, got 1'),
    ({'ranking_check': 'false'}, 'audit parameter ranking_check must be '
                                 "true or false, got 'false'"),
    ({'period': 10 ** 8}, 'audit parameter period must be an integer from 1 '
                          'to 86400, got 100000000'),
    ({'cooldown': 10 ** 11}, 'audit parameter cooldown must be an integer '
                             'from 0 to 604800, got 100000000000'),
    ({'granularity': 2.5}, 'audit parameter granularity must be an integer '
                           'from 1 to 3600, got 2.5'),
    ({'max_migrations': True}, 'audit parameter max_migrations must be an '
                               'integer from 1 to 1000, got True'),
    ({'threshold': 'high'}, 'audit parameter threshold must be a finite '
                            "number from 0 to 100, got 'high'"),
    ({'horizon': 'soon'}, 'audit parameter horizon must be null or an '
                          "integer from 1 to 86400, got 'soon'"),
    ({'period': 86400, 'granularity': 1},
     'audit parameters period 86400 s at granularity 1 s make 86400 steps '
     'per host; at most 8640 are allowed'),
])
def test_strategy_refuses_what_the_schema_would(params, message):
    strategy = failing_cluster().strategy(**params)
    with pytest.raises(errors.InvalidParameter) as err:
        strategy.execute()
    assert str(err.value) == message
    # a WatcherException: Watcher's audit handler marks the audit FAILED
    assert isinstance(err.value, exception.WatcherException)
    assert moves(strategy.solution) == []


def test_strategy_takes_integral_floats_and_fills_defaults():
    strategy = failing_cluster().strategy(period=300.0, threshold=90)
    assert moves(strategy.execute()) == [('vm1', 'src', 'dst')]
    assert strategy.params == {
        'threshold': 90.0, 'period': 300, 'granularity': 10, 'horizon': None,
        'max_migrations': 1, 'cooldown': 600, 'received_cooldown': 0,
        'mode': 'planned',
        'risk_threshold': 0.5, 'cost_weight': 1.0, 'move_rule': 'queueing',
        'speed_floor': 0.85, 'starved_window': 60,
        'instance_choice': 'most_relief', 'look_ahead': None,
        'planner_history': 21600, 'planner_granularity': None,
        'forecast_tolerance': 0.2,
        'planner_forecast': 'seasonal_or_analog',
        'forecast_timing_margin': None,
        'fallback_ranking': 'current_cpu', 'ranking_check': True}
    assert isinstance(strategy.params['period'], int)


def test_the_schema_is_a_new_dict_each_time():
    """A caller that edits the schema it got (Watcher fills defaults into
    what it validates) cannot change the next audit's.
    """
    first = parameters.schema()
    first['properties']['threshold']['default'] = 50.0
    first['properties'].pop('mode')
    again = plf.PredictedLeastFailure.get_schema()
    assert again['properties']['threshold']['default'] == 90.0
    assert again['properties']['mode']['default'] == parameters.PLANNED
    assert parameters.checked({})['threshold'] == 90.0


def test_checked_leaves_the_given_parameters_as_they_were():
    given = {'period': 300.0, 'mode': parameters.REACTIVE}
    params = parameters.checked(given)
    assert given == {'period': 300.0, 'mode': 'reactive'}
    assert params['period'] == 300 and isinstance(params['period'], int)
    assert set(params) == set(parameters.schema()['properties'])
