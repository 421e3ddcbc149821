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

"""The audit parameters of ``predicted_least_failure``: their JSON schema
(what Watcher's API validates and ``openstack optimize strategy show``
prints) and the checks the strategy makes again before it uses them.
"""

import math
import numbers

from watcher_failpredict.strategies import errors
from watcher_failpredict.strategies import forecast_inputs
from watcher_failpredict.strategies import load_forecast
from watcher_failpredict.strategies import placement
from watcher_failpredict.strategies import planned_mode

REACTIVE = 'reactive'
PROACTIVE = 'proactive'
PLANNED = 'planned'
#: Whether to relieve a failing host and which VNF (``move_rule``),
#: default first.
MOVE_RULES = ('queueing', 'speed_floor')
#: How planned mode's reactive fallback ranks destinations
#: (``fallback_ranking``), default first.
CURRENT_CPU = 'current_cpu'
FALLBACK_RANKINGS = (CURRENT_CPU, 'model')

#: JSON schema (draft 4, as Watcher's API validates) has no "finite"
#: keyword, and NaN passes every ``minimum`` and ``maximum``: jsonschema
#: reports a violation when ``value < minimum``, false for NaN. For the same
#: reason NaN, and only NaN, satisfies both ``maximum: 0`` and ``minimum:
#: 1``, so refusing that pair refuses NaN and nothing else. Infinity is
#: refused by the ``maximum`` every number parameter has.
NOT_NAN = {'not': {'allOf': [{'maximum': 0}, {'minimum': 1}]}}
#: Most window steps per host an audit may read (one day at 10 s): the
#: windows of 1,000 hosts stay under 400 MB.
MAX_WINDOW_STEPS = 8640
DAY = 86400


def schema():
    """The parameters' JSON schema (draft 4), a new dict at each call."""
    return {
        'type': 'object',
        'properties': {
            'threshold': {
                'description': 'Failure state: mean CPU over the '
                               'period at or above this percent of '
                               'the host (paper: 90).',
                'type': 'number', 'minimum': 0, 'maximum': 100,
                **NOT_NAN, 'default': 90.0,
            },
            'period': {
                'description': 'Seconds over which the trigger '
                               'averages host CPU (at most one day: '
                               'saturation is a state of now).',
                'type': 'integer', 'minimum': 1, 'maximum': DAY,
                'default': 300,
            },
            'granularity': {
                'description': 'Seconds between two metric samples; '
                               'must equal the model\'s (at most one '
                               'hour).',
                'type': 'integer', 'minimum': 1, 'maximum': 3600,
                'default': 10,
            },
            'horizon': {
                'description': 'Prediction horizon in seconds; null '
                               'uses the model\'s own. A different '
                               'value fails the audit (the model only '
                               'knows the horizon it was trained for; '
                               'at most one day).',
                'type': ['integer', 'null'], 'minimum': 1,
                'maximum': DAY, 'default': None,
            },
            'max_migrations': {
                'description': 'Most live migrations planned per '
                               'audit (one VNF per failing host at '
                               'most; at most 1000).',
                'type': 'integer', 'minimum': 1, 'maximum': 1000,
                'default': 1,
            },
            'cooldown': {
                'description': 'Seconds during which a migrated '
                               'instance does not go back to the host '
                               'it left (at most 7 days); it may move '
                               'on elsewhere.',
                'type': 'integer', 'minimum': 0, 'maximum': 7 * DAY,
                'default': 600,
            },
            'received_cooldown': {
                'description': 'Seconds during which a host that '
                               'received an instance is not a source '
                               '(at most 7 days). 0: a destination '
                               'that turns out overloaded can be '
                               'relieved at once.',
                'type': 'integer', 'minimum': 0, 'maximum': 7 * DAY,
                'default': 0,
            },
            'mode': {
                'description': 'planned (default): value every '
                               'allowed move over a seasonal forecast '
                               'of the next look_ahead seconds and '
                               'plan those that pay off hosts it sees '
                               'starved (speed_floor), while that '
                               'forecast has been right '
                               '(forecast_tolerance); reactive '
                               'otherwise, and while the history is '
                               'too short to check it. reactive: act '
                               'on hosts whose mean CPU crossed the '
                               'threshold (the paper), or that starved '
                               '(starved_window), destinations ranked '
                               'by the trained model. proactive: also '
                               'on hosts whose predicted risk reaches '
                               'risk_threshold, every move passing the '
                               'cost-benefit gate.',
                'type': 'string', 'enum': [REACTIVE, PROACTIVE, PLANNED],
                'default': PLANNED,
            },
            'look_ahead': {
                'description': 'Planned mode: seconds of the forecast a '
                               'move is valued over; null: twice the '
                               'cooldown plus 60 (at most 2 days).',
                'type': ['integer', 'null'], 'minimum': 1,
                'maximum': 2 * DAY, 'default': None,
            },
            'planner_history': {
                'description': 'Planned mode: seconds of history read '
                               'to estimate each host\'s and VNF\'s '
                               'load cycle and check the forecast; at '
                               'least twice look_ahead, and two of the '
                               'longest cycle to see it (2 days for a '
                               'daily one; at most 14 days).',
                'type': 'integer', 'minimum': 1, 'maximum': 14 * DAY,
                'default': 6 * 3600,
            },
            'planner_granularity': {
                'description': 'Planned mode: seconds per step of that '
                               'history and of the forecast; null: '
                               'granularity. At most 8640 steps of '
                               'history are read (e.g. 60 s for 6 '
                               'days).',
                'type': ['integer', 'null'], 'minimum': 1,
                'maximum': 3600, 'default': None,
            },
            'forecast_tolerance': {
                'description': 'Planned mode: the forecast it would '
                               'have made one look_ahead ago missed '
                               'what followed by this share of the '
                               'hosts\' cores on average (mean '
                               'absolute error) over every period '
                               'of it at most, or the audit is '
                               'reactive.',
                'type': 'number', 'minimum': 0, 'maximum': 10,
                **NOT_NAN, 'default': load_forecast.TOLERANCE,
            },
            'planner_forecast': {
                'description': 'Planned mode: the forecast of the '
                               'hosts\' background load. seasonal: '
                               'the value one cycle back; analog: the '
                               'stretch of each host\'s history '
                               'that, stretched or squeezed in time, '
                               'best matches its last two hours, '
                               'continued (follows cycles that '
                               'changed pace or phase); '
                               'seasonal_or_analog: the seasonal one '
                               'while it passes the forecast_tolerance '
                               'check, else the analog one if that '
                               'one passes.',
                'type': 'string',
                'enum': list(forecast_inputs.FORECASTS),
                'default': forecast_inputs.FORECASTS[0],
            },
            'forecast_timing_margin': {
                'description': 'Planned mode: where the forecast '
                               'fails the forecast_tolerance check, '
                               'plan on its time envelope (its lowest '
                               'and highest within this many seconds '
                               'either way of each moment: peaks that '
                               'come a little early or late) if the '
                               'load fell outside the envelope it '
                               'would have made one look_ahead ago by '
                               'no more than forecast_tolerance; a VNF '
                               'then leaves a host starved even at the '
                               'low, for a host valued at the high. '
                               'null: period; 0: the audit is '
                               'reactive whenever the forecast fails '
                               'its check.',
                'type': ['integer', 'null'], 'minimum': 0,
                'maximum': 3600, 'default': None,
            },
            'fallback_ranking': {
                'description': 'Planned mode: how the reactive rules '
                               'rank destinations while the forecast '
                               'is not trusted. current_cpu: by the '
                               'mean CPU over the period now, the '
                               'VNF\'s load added, when the forecast '
                               'failed its check (the load\'s cycles '
                               'have changed, and the trained model '
                               'ranks by the cycles it learned); by '
                               'the trained model, checked as in '
                               'reactive mode (ranking_check), when '
                               'no forecast could be checked (a '
                               'history too short: the first hours). '
                               'model: by the trained model, checked, '
                               'in both cases.',
                'type': 'string', 'enum': list(FALLBACK_RANKINGS),
                'default': FALLBACK_RANKINGS[0],
            },
            'ranking_check': {
                'description': 'Reactive mode: at the audits one '
                               'look_ahead ago (three, one period '
                               'apart), compare the host the trained '
                               'model ranked first with the host of '
                               'least CPU then, by the mean CPU each '
                               'ran at since; when the model\'s picks '
                               'ran busier (its cycles no longer '
                               'hold), rank destinations by the mean '
                               'CPU over the period now, the VNF\'s '
                               'load added. The decision engine '
                               'remembers its audits: the check needs '
                               'audits at least every period '
                               '(continuous), and waits a look_ahead '
                               'after a restart unless record_risk '
                               'wrote them. false: always rank by the '
                               'model.',
                'type': 'boolean', 'default': True,
            },
            'risk_threshold': {
                'description': 'Proactive mode: predicted probability '
                               'of failure within the horizon at which '
                               'a host is a source; a destination must '
                               'stay below it.',
                'type': 'number', 'minimum': 0, 'maximum': 1,
                **NOT_NAN, 'default': 0.5,
            },
            'cost_weight': {
                'description': 'Proactive mode: weight of a '
                               'migration\'s cost (estimated migration '
                               'time / horizon) against the expected '
                               'number of VNFs it keeps off a failing '
                               'host (at most 1000).',
                'type': 'number', 'minimum': 0, 'maximum': 1000,
                **NOT_NAN, 'default': 1.0,
            },
            'speed_floor': {
                'description': 'Whether to move at all: a host in '
                               'failure state is relieved only when its '
                               'consumers get less than this share of '
                               'the CPU they ask for (its cores over '
                               'its runnable demand, the load average, '
                               'averaged over the period). Above it '
                               'its VNFs are barely slowed and a live '
                               'migration\'s switch-over costs them '
                               'more than it spares; 1 moves whenever '
                               'the threshold is crossed (the paper). '
                               'Hosts at risk in proactive mode are '
                               'not gated; in planned mode a VNF '
                               'leaves only a host the forecast sees '
                               'below it over some period of the '
                               'look-ahead.',
                'type': 'number', 'minimum': 0, 'maximum': 1,
                **NOT_NAN, 'default': 0.85,
            },
            'move_rule': {
                'description': 'Whether to move and which VNF (reactive '
                               'mode). speed_floor: relieve a failing '
                               'host when its consumers get less than '
                               'speed_floor of the CPU they ask for, '
                               'moving the VNF instance_choice names. '
                               'queueing: move the VNF whose move spares '
                               'the most requests (Little\'s law on '
                               'each VNF\'s utilisation at its host\'s '
                               'processor-sharing speed, over the '
                               'cooldown, minus the migration\'s and '
                               'switch-over\'s cost), and only when '
                               'that is positive.',
                'type': 'string', 'enum': list(MOVE_RULES),
                'default': MOVE_RULES[0],
            },
            'starved_window': {
                'description': 'Seconds of the latest metrics that say '
                               'how starved a host is now (at most '
                               'period). A host whose consumers got '
                               'less than speed_floor of the CPU they '
                               'ask for over them (its cores over its '
                               'load average) is relieved like a host '
                               'in failure state, before its mean CPU '
                               'over period crosses threshold, and the '
                               'queueing rule values a move off it on '
                               'them. 60 (default) relieves loads '
                               'that ramp up minutes before their '
                               'mean crosses the threshold, and may '
                               'move on a spike a move does not pay '
                               'for (doc/source/strategy.rst). 0: the '
                               'threshold over period alone decides, '
                               'and the queueing rule values moves '
                               'over period.',
                'type': 'integer', 'minimum': 0, 'maximum': DAY,
                'default': 60,
            },
            'instance_choice': {
                'description': 'Which VNF leaves a failing host (reactive '
                               'mode): most_relief, the one whose '
                               'departure relieves it the most (its '
                               'largest consumer, cheapest to migrate '
                               'on ties), or cheapest_ending, the '
                               'cheapest to migrate among those whose '
                               'departure alone ends the overload.',
                'type': 'string',
                'enum': list(placement.INSTANCE_CHOICES),
                'default': placement.INSTANCE_CHOICES[0],
            },
        },
        'additionalProperties': False,
    }


def checked(given):
    """The audit parameters ``given`` (a mapping), each checked against the
    schema and defaulted, and checked across each other.

    Watcher's API validates them already; the strategy checks them again
    (defence in depth): the testbed and the evaluation tools set them
    directly, an audit written without the API skips the schema, and NaN,
    which no JSON schema keyword names, would make every comparison false
    (a threshold no host ever reaches). ``errors.InvalidParameter`` names
    the parameter and what is allowed.
    """
    given = dict(given)
    params = {name: checked_parameter(name, given.get(
        name, spec['default']), spec)
        for name, spec in schema()['properties'].items()}
    steps = params['period'] // params['granularity']
    if steps > MAX_WINDOW_STEPS:
        raise errors.InvalidParameter(
            f'audit parameters period {params["period"]} s at '
            f'granularity {params["granularity"]} s make {steps} steps '
            f'per host; at most {MAX_WINDOW_STEPS} are allowed')
    if params['mode'] == PLANNED:
        _check_planner(params)
    return params


def _check_planner(params):
    """The planned mode's history must hold what it is asked for."""
    step = int(params['planner_granularity'] or params['granularity'])
    hist = int(params['planner_history'])
    ahead = planned_mode.look_ahead_seconds(params)
    if hist // step > MAX_WINDOW_STEPS:
        raise errors.InvalidParameter(
            f'audit parameters planner_history {hist} s at '
            f'planner_granularity {step} s make {hist // step} steps per '
            f'host and instance; at most {MAX_WINDOW_STEPS} are allowed: '
            f'raise planner_granularity')
    if hist < 2 * ahead:
        raise errors.InvalidParameter(
            f'audit parameter planner_history ({hist} s) must be at least '
            f'twice the look-ahead ({ahead:.0f} s): the forecast is checked '
            f'on the look-ahead before it')
    if ahead < step:
        raise errors.InvalidParameter(
            f'the look-ahead ({ahead:.0f} s) is shorter than one '
            f'planner_granularity step ({step} s)')


def checked_parameter(name, value, spec):
    """``value`` as the strategy uses it, after the checks its JSON schema
    ``spec`` states (type, finiteness, bounds, enum); InvalidParameter
    naming the parameter and what is allowed otherwise.
    """
    types = spec['type'] if isinstance(spec['type'], list) else [spec['type']]
    if value is None and 'null' in types:
        return None
    if 'enum' in spec:
        if value in spec['enum'] and isinstance(value, str):
            return value
        allowed = ', '.join(repr(v) for v in spec['enum'])
        raise errors.InvalidParameter(
            f'audit parameter {name} must be one of {allowed}, got {value!r}')
    if 'boolean' in types:
        # 1 and "yes" are not booleans: JSON says true or false
        if isinstance(value, bool):
            return value
        raise errors.InvalidParameter(
            f'audit parameter {name} must be true or false, got {value!r}')
    low, high = spec.get('minimum'), spec.get('maximum')
    kind = 'an integer' if 'integer' in types else 'a finite number'
    if 'null' in types:
        kind = f'null or {kind}'
    number = None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
        if not math.isfinite(number) or ('integer' in types and
                                         not number.is_integer()):
            number = None
    if number is None or not low <= number <= high:
        raise errors.InvalidParameter(
            f'audit parameter {name} must be {kind} from {low:g} to '
            f'{high:g}, got {value!r}')
    return int(number) if 'integer' in types else number
