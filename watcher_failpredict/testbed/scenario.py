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

"""Testbed scenarios: a YAML schema, its validation, the built-in files.

A scenario file fixes everything a run depends on: servers, service
chains, background load, request rates, the trigger, the migration model,
the durations of the training and test stretches and the seed. load()
fills defaults, checks every value and raises ScenarioError naming the bad
key (``chains.rate.noise: must be >= 0, got -1``); load() adds the file.
A pattern key that does not apply to the pattern's kind (``scale`` on a
``sine``, ``period`` on a ``trace``) is refused, not ignored. The schema
is documented in ``doc/source/testbed.rst``; the YAML files in
``scenarios/`` beside this module are the built-in scenarios.
"""

import copy
import csv
import os
import warnings

import yaml

from watcher_failpredict.testbed import loads
from watcher_failpredict.tracesets import location

BUILTIN_DIR = os.path.join(os.path.dirname(__file__), 'scenarios')


class ScenarioError(ValueError):
    """A scenario file is invalid; the message names the key and why."""


class ScenarioDeprecationWarning(DeprecationWarning):
    """A scenario uses a key under its old name."""


# Python hides DeprecationWarnings outside __main__; a scenario's author
# should see these (once per key and place), so they are shown.
warnings.filterwarnings('default', category=ScenarioDeprecationWarning)


# key -> (type(s), minimum or None, default); a dict value is a section.
_NUM = (int, float)
PATTERN = {
    'kind': (str, None, None),
    'base': (_NUM, 0, 0.0),
    'amplitude': (_NUM, 0, 0.0),
    'period': (_NUM, 1e-9, 3600.0),
    'phase': (_NUM, None, 0.0),
    'noise': (_NUM, 0, 0.0),
    'duty': (_NUM, 0, 0.5),
    'width': (_NUM, 0, 0.1),
    'file': (str, None, None),
    'column': (str, None, None),
    'columns': (list, None, None),
    'time_column': (str, None, None),
    'where': (dict, None, None),
    'scale': (_NUM, 0, 1.0),
    'seconds_per_value': (_NUM, 1e-9, 10.0),
}

#: Old pattern key -> its new name (read with a deprecation warning).
#: ``step`` was a trace's seconds per value, easily taken for the
#: scenario's simulation ``step``.
RENAMED_PATTERN_KEYS = {'step': 'seconds_per_value'}

_COMMON_KEYS = ('kind', 'base', 'noise')
_SHAPE_KEYS = ('amplitude', 'period', 'phase')
#: The pattern keys each kind reads; any other is refused.
KIND_KEYS = {
    'constant': _COMMON_KEYS,
    'sine': _COMMON_KEYS + _SHAPE_KEYS,
    'sawtooth': _COMMON_KEYS + _SHAPE_KEYS,
    'square': _COMMON_KEYS + _SHAPE_KEYS + ('duty',),
    'spikes': _COMMON_KEYS + _SHAPE_KEYS + ('width',),
    'trace': _COMMON_KEYS + ('phase', 'file', 'column', 'columns',
                             'time_column', 'where', 'scale',
                             'seconds_per_value'),
}

SCHEMA = {
    'name': (str, None, 'unnamed'),
    'description': (str, None, ''),
    'seed': (int, 0, 0),
    'step': (_NUM, 1e-9, 5.0),
    'metrics_interval': (int, 1, 10),
    'decision_interval': (int, 1, 60),
    'train_duration': (_NUM, 1, 14400.0),
    'test_duration': (_NUM, 1, 7200.0),
    'latency_samples': (int, 1, 16),
    'random_phases': (bool, None, False),
    'servers': {
        'count': (int, 2, 12),
        'cores': (int, 1, 12),
        'memory_mb': (int, 1, 24576),
        'disk_gb': (int, 1, 500),
        'os_memory_mb': (_NUM, 0, 2048.0),
        'background': (list, None, None),
    },
    'chains': {
        'count': (int, 1, 12),
        'hops': (list, None, None),
        'vcpus': (int, 1, 1),
        'memory_mb': (int, 1, 1024),
        'disk_gb': (int, 0, 10),
        'rate': (dict, None, None),
        'timeout': (_NUM, 1e-9, 2.0),
        'link_latency': (_NUM, 0, 0.0005),
        'request_bytes': (_NUM, 0, 20000.0),
    },
    'trigger': {
        'threshold': (_NUM, 0, 90.0),
        'period': (int, 1, 300),
    },
    'strategy': {
        'max_migrations': (int, 1, 2),
        'cooldown': (int, 0, 600),
        'received_cooldown': (int, 0, 0),
    },
    'model': {
        'horizon': (int, 1, 300),
        'window': (int, 1, 600),
        'max_samples': (int, 10, 3000),
        'kind': (str, None, 'gbt_peak'),
    },
    'migration': {
        'bandwidth_mb_s': (_NUM, 1e-9, 50.0),
        'dirty_mb_s_at_full_cpu': (_NUM, 0, 24.0),
        'setup_s': (_NUM, 0, 12.0),
        'max_downtime_s': (_NUM, 0, 0.5),
        'switchover_s': (_NUM, 0, 2.0),
        'overhead_cores': (_NUM, 0, 0.25),
    },
    'drift': {
        'period_scale': (_NUM, 1e-9, 1.0),
        'phase_shift': (_NUM, None, 0.0),
        'scale': (_NUM, 0, 1.0),
        'offset': (_NUM, None, 0.0),
    },
}

HOP = {'name': (str, None, None), 'cost': (_NUM, 1e-9, None)}


def _check_value(path, value, spec):
    types, minimum, _ = spec
    if types is _NUM and isinstance(value, bool):
        raise ScenarioError(f'{path}: must be a number, got {value!r}')
    if not isinstance(value, types):
        want = 'a number' if types is _NUM else types.__name__
        raise ScenarioError(f'{path}: must be {want}, got {value!r}')
    if minimum is not None and value < minimum:
        rel = 'positive' if minimum > 0 and minimum < 1e-6 else \
            f'>= {minimum}'
        raise ScenarioError(f'{path}: must be {rel}, got {value!r}')


def _section(path, data, schema):
    if not isinstance(data, dict):
        raise ScenarioError(f'{path or "scenario"}: must be a mapping, got '
                            f'{type(data).__name__}')
    unknown = sorted(set(data) - set(schema))
    if unknown:
        where = f'{path}.' if path else ''
        keys = ', '.join(where + k for k in unknown)
        raise ScenarioError(f'unknown key(s) {keys}'
                            f'; known: {", ".join(sorted(schema))}')
    out = {}
    for key, spec in schema.items():
        sub = f'{path}.{key}' if path else key
        if isinstance(spec, dict):
            out[key] = _section(sub, data.get(key, {}), spec)
        elif key in data:
            _check_value(sub, data[key], spec)
            out[key] = data[key]
        else:
            out[key] = spec[2]
    return out


def _pattern_kind(path, spec):
    if not isinstance(spec, dict):
        raise ScenarioError(f'{path}: must be a mapping (a pattern with '
                            f'kind), got {type(spec).__name__}')
    kind = spec.get('kind')
    if not isinstance(kind, str) or kind not in KIND_KEYS:
        raise ScenarioError(f'{path}.kind: unknown pattern {kind!r}; '
                            f'expected one of {", ".join(loads.KINDS)}')
    return kind


def _rename_old_keys(path, spec, kind, source):
    """``spec`` with deprecated keys under their new names."""
    spec = dict(spec)
    for old, new in RENAMED_PATTERN_KEYS.items():
        if old not in spec or new not in KIND_KEYS[kind]:
            continue
        if new in spec:
            raise ScenarioError(f'{path}: {old} is the old name of {new}; '
                                f'give only {new}')
        where = f'{source}: ' if source else ''
        warnings.warn(f'{where}{path}.{old} is deprecated: write {new} '
                      f'(seconds of simulated time per trace value; the '
                      f'scenario\'s own step is the simulation time step)',
                      ScenarioDeprecationWarning, stacklevel=4)
        spec[new] = spec.pop(old)
    return spec


def check_pattern(path, spec, base_dir=None, traces=None, source=None):
    """A validated copy of a pattern dict (defaults filled).

    :param traces: the traces directory for ``traces:`` files
        (:func:`location.traces_dir`)
    :param source: the scenario file, named in warnings
    """
    kind = _pattern_kind(path, spec)
    spec = _rename_old_keys(path, spec, kind, source)
    foreign = sorted(k for k in spec if k not in KIND_KEYS[kind] and (
        k in PATTERN or k in RENAMED_PATTERN_KEYS))
    if foreign:
        raise ScenarioError(
            f'{path}.{foreign[0]}: does not apply to a {kind} pattern; a '
            f'{kind} pattern takes {", ".join(KIND_KEYS[kind])}')
    out = _section(path, spec, PATTERN)
    for key in ('duty', 'width'):
        if not 0 <= out[key] <= 1:
            raise ScenarioError(f'{path}.{key}: must be in [0, 1], got '
                                f'{out[key]}')
    if kind == 'trace':
        out['file'] = resolve_trace_file(f'{path}.file', out['file'],
                                         base_dir, traces)
        if bool(out['column']) == bool(out['columns']):
            raise ScenarioError(f'{path}: a trace pattern needs column (one '
                                f'CSV column) or columns (a list summed), '
                                f'not both')
        if out['columns'] and not all(isinstance(c, str)
                                      for c in out['columns']):
            raise ScenarioError(f'{path}.columns: must be a list of column '
                                f'names, got {out["columns"]!r}')
        try:
            with location.open_text(out['file']) as f:
                header = next(csv.reader(f), [])
        except OSError as exc:
            raise ScenarioError(f'{path}.file: cannot read {out["file"]}: '
                                f'{exc.strerror or exc}') from None
        named = [('column', out['column'])] if out['column'] else [
            ('columns', c) for c in out['columns']]
        named += [('time_column', out['time_column'])] if out[
            'time_column'] else []
        named += [('where', c) for c in (out['where'] or {})]
        for key, col in named:
            if col not in header:
                raise ScenarioError(f'{path}.{key}: {out["file"]} has no '
                                    f'column {col!r}; expected one of '
                                    f'{header}')
        try:
            loads.read_trace(out['file'], out['columns'] or out['column'],
                             out['scale'], out['time_column'], out['where'])
        except ValueError as exc:
            raise ScenarioError(f'{path}: {exc}') from None
    return out


#: A trace file written ``traces:<folder>/<file>`` is read from the
#: traces directory (``--traces DIR``, ``$FAILPREDICT_TRACES`` or the user
#: cache, see tracesets.location), else from the files the package ships
#: (the Azure V1 subset). A set in neither fails with the exact
#: ``watcher-failpredict traces fetch NAME`` command.
TRACES_PREFIX = 'traces:'


def resolve_trace_file(path, name, base_dir=None, traces=None):
    """The absolute path of a trace pattern's ``file``."""
    if not name:
        raise ScenarioError(f'{path}: a trace pattern needs file (a CSV '
                            f'path, or traces:<folder>/<file>)')
    if name.startswith(TRACES_PREFIX):
        try:
            return location.find(name[len(TRACES_PREFIX):], traces)
        except ValueError as exc:
            raise ScenarioError(f'{path}: {name}: {exc}') from None
    if base_dir and not os.path.isabs(name):
        return os.path.join(base_dir, name)
    return name


def validate(data, base_dir=None, traces=None, source=None):
    """A validated, defaults-filled copy of a scenario mapping.

    :param base_dir: relative trace files are read from here
    :param traces: the traces directory (see :func:`resolve_trace_file`)
    :param source: the scenario file, named in warnings
    """
    out = _section('', copy.deepcopy(data), SCHEMA)
    bg = out['servers']['background']
    if not isinstance(bg, list) or not bg:
        raise ScenarioError('servers.background: must be a non-empty list of '
                            'patterns (server i uses entry i modulo its '
                            'length)')
    out['servers']['background'] = [
        check_pattern(f'servers.background[{i}]', p, base_dir, traces,
                      source)
        for i, p in enumerate(bg)]
    hops = out['chains']['hops']
    if not isinstance(hops, list) or not hops:
        raise ScenarioError('chains.hops: must be a non-empty list of '
                            '{name, cost}')
    checked = []
    for i, hop in enumerate(hops):
        h = _section(f'chains.hops[{i}]', hop, HOP)
        if h['name'] is None or h['cost'] is None:
            raise ScenarioError(f'chains.hops[{i}]: needs name and cost '
                                f'(core-seconds per request)')
        checked.append(h)
    out['chains']['hops'] = checked
    if out['chains']['rate'] is None:
        raise ScenarioError('chains.rate: the request-rate pattern is '
                            'required')
    out['chains']['rate'] = check_pattern('chains.rate',
                                          out['chains']['rate'], base_dir,
                                          traces, source)
    step = float(out['step'])
    for key in ('metrics_interval', 'decision_interval'):
        ratio = out[key] / step
        if abs(ratio - round(ratio)) > 1e-9:
            raise ScenarioError(f'{key}: must be a multiple of step '
                                f'({step:g} s), got {out[key]}')
    for key in ('period',):
        if out['trigger'][key] % out['metrics_interval']:
            raise ScenarioError(f'trigger.{key}: must be a multiple of '
                                f'metrics_interval')
    from watcher_failpredict.prediction import models
    kind = out['model']['kind']
    if kind in models.MODEL_KINDS and kind not in models.RISK_KINDS:
        # fixed_hosts ranks the host list it was trained on, not a risk
        # per host: the strategy would refuse it only at the first audit,
        # after the whole training stretch
        raise ScenarioError(f'model.kind: {kind!r} cannot drive the '
                            f'strategy (it predicts no risk per host); '
                            f'use one of {", ".join(models.RISK_KINDS)}')
    if kind not in models.RISK_KINDS:
        raise ScenarioError(f'model.kind: unknown model kind {kind!r}; '
                            f'known: {", ".join(models.RISK_KINDS)}')
    for key in ('horizon', 'window'):
        if out['model'][key] % out['metrics_interval']:
            raise ScenarioError(f'model.{key}: must be a multiple of '
                                f'metrics_interval')
    n_vnf = out['chains']['count'] * len(checked)
    capacity = out['servers']['count'] * out['servers']['cores']
    if n_vnf * out['chains']['vcpus'] > capacity:
        raise ScenarioError(f'chains: {n_vnf} VNFs of '
                            f'{out["chains"]["vcpus"]} vCPU do not fit on '
                            f'{capacity} cores')
    return out


def builtin_names():
    return sorted(f[:-5] for f in os.listdir(BUILTIN_DIR)
                  if f.endswith('.yaml'))


def load(name_or_path, traces=None):
    """A validated scenario from a built-in name or a YAML file path.

    :param traces: the traces directory for ``traces:`` files (default:
        ``$FAILPREDICT_TRACES``, else the user cache)
    """
    path = name_or_path
    if name_or_path in builtin_names():
        path = os.path.join(BUILTIN_DIR, f'{name_or_path}.yaml')
    try:
        with open(path, encoding='utf-8') as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ScenarioError(
            f'scenario {name_or_path!r} is neither a built-in '
            f'({", ".join(builtin_names())}) nor a readable file') from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f'scenario file {path}: invalid YAML: {exc}') \
            from None
    try:
        return validate(data or {}, os.path.dirname(os.path.abspath(path)),
                        traces, path)
    except ScenarioError as exc:
        raise ScenarioError(f'scenario file {path}: {exc}') from None
