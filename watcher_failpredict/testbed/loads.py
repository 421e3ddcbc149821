"""Background load patterns (stress-ng style) and request-rate patterns.

A pattern is a dict from a scenario file (see scenario.py); pattern()
turns it into a series sampled at given times. Every shape is
``base + amplitude * shape((t + phase) / period)`` with ``shape`` in [0, 1],
plus Gaussian noise of standard deviation ``noise``; the result is clipped
at 0. ``trace`` replays a CSV column instead of a shape.
"""

import csv

import numpy as np

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


def read_trace_column(path, column, scale=1.0):
    """A CSV column as floats (blank cells dropped), times ``scale``.

    :raises ValueError: the file has no such column or no number in it
    """
    with open(path, newline='', encoding='utf-8') as f:
        reader = csv.DictReader(f)
        if column not in (reader.fieldnames or []):
            raise ValueError(f'trace file {path} has no column {column!r}; '
                             f'columns: {reader.fieldnames}')
        values = [float(row[column]) for row in reader
                  if row.get(column) not in (None, '')]
    if not values:
        raise ValueError(f'trace file {path} column {column!r} is empty')
    return np.asarray(values, dtype=float) * scale


def pattern(spec, t, rng, period_scale=1.0, phase_shift=0.0):
    """A pattern's values at times ``t`` (seconds from the run's start).

    :param spec: a validated pattern dict (kind, base, amplitude, period,
        phase, noise, and duty/width or trace fields)
    :param rng: numpy Generator for the noise
    :param period_scale: multiplies the period (drift scenarios)
    :param phase_shift: added to the phase, seconds (drift scenarios)
    """
    t = np.asarray(t, dtype=float)
    kind = spec['kind']
    base = float(spec.get('base', 0.0))
    amp = float(spec.get('amplitude', 0.0))
    if kind == 'trace':
        values = read_trace_column(spec['file'], spec['column'],
                                   float(spec.get('scale', 1.0)))
        step = float(spec.get('step', 10.0))
        idx = (np.floor((t + float(spec.get('phase', 0.0))) / step)
               .astype(int) % values.size)
        out = base + values[idx]
    else:
        period = float(spec.get('period', 1.0)) * period_scale
        phase = float(spec.get('phase', 0.0)) + phase_shift
        out = base + amp * shape(kind, t, period, phase,
                                 float(spec.get('duty', 0.5)),
                                 float(spec.get('width', 0.1)))
    noise = float(spec.get('noise', 0.0))
    if noise > 0:
        out = out + rng.normal(0.0, noise, size=t.shape)
    return np.clip(out, 0.0, None)
