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

"""What the planned mode reads of the past, turned into a forecast.

collectd reports each server's load average (its runnable demand, in
cores) and each VNF's CPU; neither says what a server runs besides its
VNFs. That background is the load average less the CPU of the VNFs that
were on the server at the time, so the placement at every sample is
rebuilt from the migrations Watcher ran. Each row's cycle is estimated
on the history read, the coming look-ahead is the seasonal naive
forecast, or where that one fails its check the forecast by analogy
(:mod:`strategies.load_forecast`). At scale the plan weighs
only the hosts that matter, chosen on their load averages before any
VNF's history is read: those the forecast sees busiest, and those it
sees with the most room.

Pure functions of arrays, as OpenStack Neat's overload detectors.
"""

import dataclasses

import numpy as np

from watcher_failpredict.prediction import cycles
from watcher_failpredict.strategies import load_forecast

#: Share of a row's samples that may be missing (filled by interpolation
#: between its neighbours); a row with more is not planned on.
MAX_MISSING = 0.1


def gaps_filled(rows, max_missing=MAX_MISSING):
    """``(filled, ok)``: each row with its missing samples interpolated
    between their neighbours (held at the ends), and whether at most
    ``max_missing`` of them were missing.
    """
    rows = np.array(rows, dtype=float, ndmin=2)
    missing = np.isnan(rows)
    ok = missing.mean(axis=1) <= max_missing if rows.shape[1] else \
        np.zeros(rows.shape[0], dtype=bool)
    x = np.arange(rows.shape[1])
    for i in np.flatnonzero(ok & missing.any(axis=1)):
        seen = ~missing[i]
        rows[i] = np.interp(x, x[seen], rows[i, seen])
    return rows, ok


def placement_history(uuids, hosts, host_now, past_migrations, times):
    """(instances, samples) index in ``hosts`` of where each instance ran
    at each sample, -1 outside them.

    Walked back from where each instance is now through the migrations
    that brought it there, latest first; the sample of the window
    starting at ``t`` counts for the source of a migration that ended
    after ``t``. A migration the instance is not at the destination of
    (one under way: Nova moves it when it completes) changes nothing.

    :param host_now: {instance UUID: host name}
    :param past_migrations: iterable of migrations.Migration
    """
    index = {h: i for i, h in enumerate(hosts)}
    times = np.asarray(times, dtype=float)
    slot = {u: i for i, u in enumerate(uuids)}
    current = {u: host_now.get(u) for u in uuids}
    where = np.array([[index.get(current[u], -1)] * times.size
                      for u in uuids], dtype=int).reshape(len(uuids),
                                                          times.size)
    for mig in sorted(past_migrations, key=lambda m: float(m.at),
                      reverse=True):
        u = mig.instance_uuid
        if u not in slot or current[u] != mig.destination_node:
            continue
        before = times < float(mig.at)
        where[slot[u], before] = index.get(mig.source_node, -1)
        current[u] = mig.source_node
    return where


def background(load, demand, where):
    """(hosts, samples) cores each host ran besides its VNFs: its load
    average less the demand of the VNFs on it then, at least 0.
    """
    load = np.asarray(load, dtype=float)
    on = np.zeros_like(load)
    placed = where >= 0
    np.add.at(on, (where[placed], np.nonzero(placed)[1]),
              np.asarray(demand, dtype=float)[placed])
    return np.maximum(load - on, 0.0)


def replayable_cycles(past, period, steps):
    """Each row's cycle in steps, estimated on ``past``; 0 for a row
    without one, or whose cycle the history cannot replay.
    """
    cyc = cycles.estimate_host_cycles(past, 1, period, steps)
    return np.where(cyc <= np.shape(past)[1], cyc, 0).astype(int)


@dataclasses.dataclass(frozen=True)
class Outlook:
    """The forecast of every host and VNF, and how right it has been.

    :param bg: (hosts, T) forecast background (cores); of the envelope,
        its low
    :param demand: (vnfs, T) forecast VNF demand (cores)
    :param errors: (hosts,) each host's backtest error (cores), NaN where
        the history is too short to tell
    :param share: the hosts' mean error as a share of their cores
    :param trusted: whether ``share`` is within the tolerance
    :param forecast: the background forecast planned on
        (load_forecast.SEASONAL, ANALOG or ENVELOPE)
    :param bg_high: of the envelope, its high (the background a VNF
        arriving on a host is valued against); None for the others
    :param of: of the envelope, the forecast it is the envelope of
    """

    bg: np.ndarray
    demand: np.ndarray
    errors: np.ndarray
    share: float
    trusted: bool
    forecast: str = load_forecast.SEASONAL
    bg_high: np.ndarray = None
    of: str = None


#: The background forecasts :func:`outlook` can make (the strategy's
#: ``planner_forecast``), default first: the seasonal one while it passes
#: its check, else the one by analogy.
SEASONAL_OR_ANALOG = 'seasonal_or_analog'
FORECASTS = (SEASONAL_OR_ANALOG, load_forecast.SEASONAL,
             load_forecast.ANALOG)


def outlook(bg_past, demand_past, cores, steps, period,
            tolerance=load_forecast.TOLERANCE, step=None,
            forecast=load_forecast.SEASONAL, margin=0):
    """The forecast of the next ``steps`` steps, checked by the forecast
    it would have made one look-ahead ago (:func:`load_forecast.trusted`).

    Each VNF's demand is the seasonal one, its cycle estimated on its
    history (longer than ``steps``, so the forecast reads only the past).
    The hosts' background is ``forecast``: seasonal, by analogy
    (:func:`load_forecast.analog_forecast`, which needs ``step``, the
    history's seconds per step), or ``seasonal_or_analog``: the seasonal
    one while it passes its check, else the one by analogy where that
    one passes. Seasonal first: where the cycles hold, it replays them
    with no search to go wrong (doc/source/testbed.rst, "A forecast by
    analogy"); the analogy is for the audits whose cycles stretched or
    shifted.

    Where every forecast tried fails its check and ``margin`` is at
    least one step, their time envelopes over ``margin`` steps either
    way (:func:`load_forecast.time_envelope`) are checked one-sided
    (:func:`load_forecast.envelope_misses`), and the one that missed by
    less is planned on if it passes. Otherwise the result is not
    trusted, and is the forecast that missed by less.
    """
    if forecast not in FORECASTS:
        raise ValueError(f'forecast must be one of {", ".join(FORECASTS)}, '
                         f'got {forecast!r}')
    if forecast != load_forecast.SEASONAL and step is None:
        raise ValueError('the forecast by analogy needs the history\'s '
                         'seconds per step')
    vnf_cyc = replayable_cycles(demand_past, period, steps)
    demand = load_forecast.seasonal_forecast(demand_past, vnf_cyc, steps,
                                             period)
    bg_past = np.asarray(bg_past, dtype=float)
    actual = bg_past[:, max(bg_past.shape[1] - steps, 0):]

    def checked(name, bg, then, res=None):
        # ``then``: the forecast made one look-ahead ago, kept for the
        # envelope's check
        if res is None:
            res = load_forecast.backtest_misses(bg_past, then, steps)
        ok, share = load_forecast.trusted(res, cores, period, tolerance)
        return Outlook(bg=bg, demand=demand,
                       errors=load_forecast.mean_errors(res), share=share,
                       trusted=ok, forecast=name), then

    tried = []
    if forecast != load_forecast.ANALOG:
        tried.append(checked(load_forecast.SEASONAL, *_seasonal(
            bg_past, steps, period)))
    if forecast != load_forecast.SEASONAL and not (
            tried and tried[0][0].trusted):
        tried.append(checked(load_forecast.ANALOG,
                             load_forecast.analog_forecast(bg_past, steps,
                                                           step),
                             load_forecast.analog_backtest(bg_past, steps,
                                                           step)))
    last = tried[-1][0]
    if last.trusted:
        return last
    envelopes = []
    for made, then in tried if int(margin) >= 1 else ():
        if then is None:
            continue
        low, high = load_forecast.time_envelope(made.bg, margin)
        low_then, high_then = load_forecast.time_envelope(then, margin)
        res = load_forecast.envelope_misses(actual, low_then, high_then)
        envelope, _ = checked(load_forecast.ENVELOPE, low, None, res)
        if envelope.trusted:
            envelopes.append(dataclasses.replace(
                envelope, bg_high=high, of=made.forecast))
    if envelopes:
        return min(envelopes, key=lambda o: o.share)
    known = [o for o, _ in tried if not np.isnan(o.share)]
    return min(known, key=lambda o: o.share) if known else last


def _seasonal(bg_past, steps, period):
    """``(forecast, then)`` of :func:`outlook`'s seasonal forecast."""
    cyc = replayable_cycles(bg_past, period, steps)
    return (load_forecast.seasonal_forecast(bg_past, cyc, steps, period),
            load_forecast.seasonal_backtest(bg_past, cyc, steps, period))


def host_demand(fc):
    """(hosts, T) each host's demand (cores) over the forecast ``fc`` (a
    stay_planner.Forecast), its VNFs where they are now.
    """
    total = np.array(fc.bg, dtype=float)
    np.add.at(total, np.asarray(fc.host_of, dtype=int), fc.demand)
    return total


def least_headroom(fc):
    """(hosts,) each host's fewest spare cores over the forecast ``fc``,
    its VNFs where they are now.
    """
    return (np.asarray(fc.cores, dtype=float)[:, None] -
            host_demand(fc)).min(axis=1)


def hosts_to_plan(load_past, cores, has_vnfs, steps, period, sources,
                  destinations):
    """Sorted indices of the hosts a plan weighs: the ``sources`` hosts
    with VNFs whose load the seasonal forecast of the next ``steps`` sees
    highest for their cores, and the ``destinations`` hosts it sees with
    the most spare cores at their busiest; every host when there are no
    more than that.

    Chosen on the hosts' load averages alone, so that only the chosen
    hosts' VNFs are read.

    :param load_past: (hosts, n) each host's load average (cores), no gaps
    :param has_vnfs: (hosts,) whether a VNF runs there now
    """
    load_past = np.asarray(load_past, dtype=float)
    n_hosts = load_past.shape[0]
    if n_hosts <= sources + destinations:
        return np.arange(n_hosts)
    ahead = load_forecast.seasonal_forecast(
        load_past, replayable_cycles(load_past, period, steps), steps,
        period)
    cores = np.asarray(cores, dtype=float)
    pressure = np.where(has_vnfs, (ahead / cores[:, None]).mean(axis=1),
                        -np.inf)
    room = (cores[:, None] - ahead).min(axis=1)
    order = np.arange(n_hosts)
    busiest = order[np.lexsort((order, -pressure))]
    busiest = busiest[np.asarray(has_vnfs, dtype=bool)[busiest]]
    freest = order[np.lexsort((order, -room))]
    return np.union1d(busiest[:int(sources)], freest[:int(destinations)])
