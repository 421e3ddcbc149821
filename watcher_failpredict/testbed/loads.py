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

"""Background load patterns (stress-ng style) and request-rate patterns.

A pattern is a dict from a scenario file (see scenario.py); pattern()
turns it into a series sampled at given times. Every shape is
``base + amplitude * shape((t + phase) / period)`` with ``shape`` in [0, 1],
plus Gaussian noise of standard deviation ``noise``; the result is clipped
at 0. ``trace`` replays a CSV column (or the sum of several, e.g. the VMs
placed on one server) instead of a shape, one trace value per
``seconds_per_value`` seconds of simulated time (the simulation's own
``step`` is another thing: the scenario's time step). Drift (scenario key
``drift``) stretches the period, shifts the phase and changes the level
(``scale`` times the pattern, plus ``offset``) of the test stretch.
"""

import csv
import datetime
import functools

import numpy as np

from watcher_failpredict.tracesets import location

KINDS = ('constant', 'sine', 'square', 'sawtooth', 'spikes', 'trace')


def _frac(t, period, phase):
    return np.mod((np.asarray(t, dtype=float) + phase) / period, 1.0)


def shape(kind, t, period, phase=0.0, duty=0.5, width=0.1):
    """The pattern's shape in [0, 1] at times ``t`` (seconds).

    * sine: ``(1 - cos(2 pi x)) / 2`` (0 at the start of a period)
    * square: 1 during the first ``duty`` of each period, else 0
    * sawtooth: ``x`` (a linear ramp, then a drop)
    * spikes: 1 during the first ``width`` of each period, else 0
    """
    if kind == 'constant':
        return np.zeros_like(np.asarray(t, dtype=float))
    x = _frac(t, period, phase)
    if kind == 'sine':
        return (1.0 - np.cos(2.0 * np.pi * x)) / 2.0
    if kind == 'square':
        return (x < duty).astype(float)
    if kind == 'sawtooth':
        return x
    if kind == 'spikes':
        return (x < width).astype(float)
    raise ValueError(f'unknown pattern kind {kind!r}; known: {KINDS}')


@functools.lru_cache(maxsize=8)
def _read_csv(path):
    """``(header, {column: tuple of cells})`` of a CSV file (plain, .gz or
    .bz2), read once.
    """
    with location.open_text(path) as f:
        reader = csv.reader(f)
        header = next(reader, [])
        rows = list(reader)
    cols = {name: tuple(r[i] if i < len(r) else '' for r in rows)
            for i, name in enumerate(header)}
    return tuple(header), cols


def read_trace(path, columns, scale=1.0, time_column=None, where=None):
    """The sum of CSV ``columns`` per row, times ``scale``.

    :param columns: one column name or a list (e.g. the VMs summed onto a
        server); a row with a blank cell in any of them is dropped
    :param time_column: seconds, or ISO-8601 date-times (a date-time
        without a zone is UTC); when given, the values are put on the
        trace's own regular grid (its most common time step) and a missing
        slot repeats the previous value, so gaps do not shift time
    :param where: ``{column: value}``: keep only the rows whose cells
        equal these values (a long-format file such as Alibaba's, one
        machine's rows)
    :raises ValueError: a named column is missing, a cell is not a
        number (or a time), or no number is left
    """
    columns = [columns] if isinstance(columns, str) else list(columns)
    where = dict(where or {})
    header, cols = _read_csv(path)
    for name in columns + list(where) + ([time_column] if time_column
                                         else []):
        if name not in cols:
            raise ValueError(f'trace file {path} has no column {name!r}; '
                             f'columns: {list(header)}')
    n = len(cols[columns[0]])
    keep = np.ones(n, dtype=bool)
    for name, value in where.items():
        keep &= np.asarray(cols[name], dtype=object) == str(value)
    total = np.zeros(n)
    for name in columns:
        cells = np.asarray(cols[name], dtype=object)
        blank = cells == ''
        keep &= ~blank
        try:
            total += np.where(blank, 0.0, cells).astype(float)
        except ValueError:
            row, cell = _first_bad(cells, float)
            raise ValueError(f'trace file {path} column {name!r} row {row}: '
                             f'expected a number, got {cell!r}') from None
    values = total[keep]
    what = f'{columns if len(columns) > 1 else columns[0]!r}' + (
        f' where {where}' if where else '')
    if not values.size:
        raise ValueError(f'trace file {path} column {what} has no value')
    if time_column:
        times = _seconds(path, time_column,
                         np.asarray(cols[time_column], dtype=object)[keep])
        order = np.argsort(times, kind='stable')
        times, values = times[order], values[order]
        steps, counts = np.unique(np.diff(times), return_counts=True)
        counts[steps <= 0] = 0
        grid = float(steps[np.argmax(counts)]) if counts.any() else 1.0
        slot = np.round((times - times[0]) / grid).astype(int)
        filled = np.full(slot[-1] + 1, np.nan)
        filled[slot] = values
        # forward fill the slots without a sample
        idx = np.where(np.isnan(filled), 0, np.arange(filled.size))
        values = filled[np.maximum.accumulate(idx)]
    return values * float(scale)


def _first_bad(cells, parse):
    """(1-based data row, cell) of the first cell ``parse`` refuses."""
    for i, cell in enumerate(cells):
        if cell == '':
            continue
        try:
            parse(cell)
        except ValueError:
            return i + 1, cell
    return None, None


def _iso_seconds(text):
    when = datetime.datetime.fromisoformat(text.strip())
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp()


def _seconds(path, column, cells):
    """Times in seconds from cells in seconds or ISO-8601 date-times (the
    first cell decides which).
    """
    try:
        return cells.astype(float)
    except ValueError:
        pass
    try:
        return np.array([_iso_seconds(c) for c in cells], dtype=float)
    except ValueError:
        row, cell = _first_bad(cells, _iso_seconds)
        raise ValueError(f'trace file {path} time column {column!r} row '
                         f'{row}: expected seconds or an ISO-8601 date-time '
                         f'(e.g. 2013-07-01T00:05:00Z), got {cell!r}') \
            from None


def pattern(spec, t, rng, period_scale=1.0, phase_shift=0.0,
            level_scale=1.0, level_offset=0.0):
    """A pattern's values at times ``t`` (seconds from the run's start).

    :param spec: a validated pattern dict (kind, base, amplitude, period,
        phase, noise, and duty/width or trace fields)
    :param rng: numpy Generator for the noise
    :param period_scale: multiplies the period (drift scenarios; not
        traces, which replay their own time)
    :param phase_shift: added to the phase, seconds (drift scenarios; not
        traces)
    :param level_scale: multiplies the pattern's level before noise (drift)
    :param level_offset: added to the level before noise, in the
        pattern's unit (drift)
    """
    t = np.asarray(t, dtype=float)
    kind = spec['kind']
    base = float(spec.get('base', 0.0))
    amp = float(spec.get('amplitude', 0.0))
    if kind == 'trace':
        values = read_trace(spec['file'],
                            spec.get('columns') or spec['column'],
                            float(spec.get('scale', 1.0)),
                            spec.get('time_column'), spec.get('where'))
        per_value = float(spec.get('seconds_per_value', 10.0))
        idx = (np.floor((t + float(spec.get('phase', 0.0))) / per_value)
               .astype(int) % values.size)
        out = base + values[idx]
    else:
        period = float(spec.get('period', 1.0)) * period_scale
        phase = float(spec.get('phase', 0.0)) + phase_shift
        out = base + amp * shape(kind, t, period, phase,
                                 float(spec.get('duty', 0.5)),
                                 float(spec.get('width', 0.1)))
    if level_scale != 1.0 or level_offset != 0.0:
        out = out * float(level_scale) + float(level_offset)
    noise = float(spec.get('noise', 0.0))
    if noise > 0:
        out = out + rng.normal(0.0, noise, size=t.shape)
    return np.clip(out, 0.0, None)
