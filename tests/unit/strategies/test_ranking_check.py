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

"""The ranking check: the model's first picks of one look-ahead ago
against least-CPU's, by how busy each ran since (reactive mode)."""

import logging
import math
import threading

import numpy as np
import pytest

from tests.unit.strategies import test_planned_mode as tpm
from tests.unit.strategies import test_strategy as ts
from watcher_failpredict.strategies import predicted_least_failure as plf
from watcher_failpredict.strategies import ranking_check as rc
from watcher_failpredict.testbed import audit_cluster

NOW = 100000.0
SPAN = 1260.0
SPACING = 300.0


def _judged(t, now=NOW, span=SPAN):
    """Whether ``t`` is the time of one of the audits judged at ``now``."""
    return any(abs(t - (now - span - k * SPACING)) < 1 for k in range(3))


def _history(ran, scores=None, cpus=None, every=60.0, start=None, end=NOW):
    """Audits every ``every`` s from ``start`` to before ``end``. At the
    judged ones the model scores ``scores`` and the hosts' CPU is
    ``cpus``; at the others each host is at ``ran``.
    """
    scores = scores or {'b': 20.0, 'c': 5.0}   # the model prefers c
    cpus = cpus or {'b': 20.0, 'c': 60.0}      # least-CPU prefers b
    start = NOW - SPAN - 3 * SPACING if start is None else start
    return [rc.Audit(float(t), scores, cpus if _judged(t) else ran)
            for t in np.arange(start, end, every)]


def test_the_model_loses_when_its_picks_ran_busier():
    ran = {'b': 30.0, 'c': 80.0}
    verdict = rc.judge(_history(ran, cpus=ran), NOW, SPAN, SPACING)
    assert verdict.judged == 3
    assert verdict.model_cpu == pytest.approx(80.0)
    assert verdict.least_cpu == pytest.approx(30.0)
    assert [p[1:3] for p in verdict.picks] == [('c', 'b')] * 3
    assert [p[0] for p in verdict.picks] == [
        NOW - SPAN, NOW - SPAN - SPACING, NOW - SPAN - 2 * SPACING]
    assert rc.model_lost(verdict)


def test_the_model_keeps_ranking_when_its_picks_ran_quieter():
    verdict = rc.judge(_history({'b': 80.0, 'c': 30.0}), NOW, SPAN, SPACING)
    assert verdict.judged == 3
    assert [p[1:3] for p in verdict.picks] == [('c', 'b')] * 3
    # the later judged audits saw b at 20 %, c at 60 %: they count too
    assert 30.0 < verdict.model_cpu < 40.0 < 70.0 < verdict.least_cpu < 80.0
    assert not rc.model_lost(verdict)


def test_the_same_pick_is_a_tie_and_keeps_the_model():
    ran = {'b': 50.0, 'c': 70.0}
    verdict = rc.judge(_history(ran, scores={'b': 1.0, 'c': 5.0}, cpus=ran),
                       NOW, SPAN, SPACING)
    assert verdict.model_cpu == verdict.least_cpu == pytest.approx(50.0)
    assert not rc.model_lost(verdict)
    assert not rc.model_lost(None)


@pytest.mark.parametrize('audits', [
    [],
    # nothing remembered from a look-ahead ago (a restarted engine)
    _history({'b': 30.0, 'c': 80.0}, start=NOW - SPAN + SPACING),
    # one-shot audits an hour apart
    _history({'b': 30.0, 'c': 80.0}, every=3600.0, start=NOW - 3 * 3600),
    # the judged audits, but one audit since: the busy stretch is unknown
    _history({'b': 30.0, 'c': 80.0}, every=SPACING,
             start=NOW - SPAN - 2 * SPACING, end=NOW - SPAN + 1) + [
        rc.Audit(NOW - 100, {}, {'b': 30.0, 'c': 80.0})],
])
def test_nothing_is_judged_without_the_audits_to_judge(audits):
    assert rc.judge(audits, NOW, SPAN, SPACING) is None


def test_two_audits_are_too_few_to_overrule_the_model():
    """The memory starts a look-ahead and one period back: the oldest
    audit to judge is missing, and the two others, whatever they say, do
    not decide.
    """
    ran = {'b': 30.0, 'c': 80.0}
    audits = _history(ran, cpus=ran, start=NOW - SPAN - 1.5 * SPACING + 60)
    assert rc.judge(audits, NOW, SPAN, SPACING) is None
    two = rc.judge(audits, NOW, SPAN, SPACING, decisions=2)
    assert two.judged == 2 and rc.model_lost(two)


def test_hosts_not_scored_or_not_seen_since_do_not_count():
    """``a`` would be both picks, but the model could not score it; ``d``
    would be least-CPU's, but went silent after: neither is judged.
    """
    scores = {'a': math.nan, 'b': 20.0, 'c': 5.0, 'd': 30.0}
    cpus = {'a': 1.0, 'b': 20.0, 'c': 60.0, 'd': 2.0}
    audits = _history({'a': 0.0, 'b': 30.0, 'c': 80.0}, scores=scores,
                      cpus=cpus)
    verdict = rc.judge(audits, NOW, SPAN, SPACING)
    assert [p[1:3] for p in verdict.picks] == [('c', 'b')] * 3
    assert rc.model_lost(verdict)
    # seen again since, d is least-CPU's pick
    audits = _history({'a': 0.0, 'b': 30.0, 'c': 80.0, 'd': 10.0},
                      scores=scores, cpus=cpus)
    verdict = rc.judge(audits, NOW, SPAN, SPACING)
    assert [p[1:3] for p in verdict.picks] == [('c', 'd')] * 3
    assert verdict.least_cpu < 10.0 and rc.model_lost(verdict)


def test_the_memory_forgets_the_old_and_the_future_and_stays_bounded():
    memory = rc.AuditMemory(max_audits=5)
    for t in range(0, 1000, 100):
        memory.remember('m', float(t), {'b': 1.0}, {'b': 2.0}, keep=450)
    # kept: the audits from 450 s before the last one
    assert [a.at for a in memory.recall('m', 1e9)] == [500, 600, 700, 800,
                                                       900]
    assert [a.at for a in memory.recall('m', 650)] == [500, 600]
    assert memory.recall('other model', 1e9) == []
    # a clock that went back (another timeline) drops what is now ahead
    memory.remember('m', 550.0, {'b': 1.0}, {'b': 2.0}, keep=450)
    assert [a.at for a in memory.recall('m', 1e9)] == [500, 550]
    for t in range(600, 2000, 10):
        memory.remember('m', float(t), {}, {}, keep=10 ** 6)
    assert len(memory.recall('m', 1e9)) == 5


def test_the_memory_takes_audits_from_several_threads():
    memory = rc.AuditMemory()

    def audits(offset):
        for t in range(100):
            memory.remember('m', offset + 0.5 * t, {}, {}, keep=10 ** 6)

    threads = [threading.Thread(target=audits, args=(1000.0 * k,))
               for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # whatever the interleaving, what is kept is ordered and no audit is
    # left half-written
    kept = memory.recall('m', 1e9)
    assert kept and all(isinstance(a.scores, dict) for a in kept)
    assert [a.at for a in kept] == sorted(a.at for a in kept)


def test_audits_read_back_merge_with_the_remembered_ones():
    memory = rc.AuditMemory(max_audits=5)
    key = ('k',)
    memory.remember(key, NOW - 60, {'a': 1.0}, {'a': 10.0}, keep=600)
    memory.remember(key, NOW, {'a': 2.0}, {'a': 20.0}, keep=600)
    back = [rc.Audit(NOW - 700, {'a': 0.0}, {'a': 0.0}),     # too old
            rc.Audit(NOW - 120, {'a': 3.0}, {'a': 30.0}),
            rc.Audit(NOW - 60, {'a': 9.0}, {'a': 90.0}),     # known
            rc.Audit(NOW + 60, {'a': 9.0}, {'a': 90.0})]     # future
    assert memory.merge(key, back, NOW, keep=600) == 1
    got = memory.recall(key, NOW)
    assert [(a.at, a.scores['a']) for a in got] == [
        (NOW - 120, 3.0), (NOW - 60, 1.0), (NOW, 2.0)]
    # bounded, the newest kept
    more = [rc.Audit(NOW - 500 + 10 * i, {}, {}) for i in range(10)]
    assert memory.merge(key, more, NOW, keep=600) == 10
    assert [a.at for a in memory.recall(key, NOW)][-2:] == [NOW - 60, NOW]
    assert len(memory.recall(key, NOW)) == 5


def test_only_a_model_file_has_a_record_tag():
    sha = 'ab' * 32
    assert rc.record_tag(rc.memory_key(rc.model_key(sha256=sha), {
        'period': 300, 'granularity': 10})) == 'abababababababab-p300-g10'
    assert rc.record_tag(rc.memory_key(rc.model_key(object()), {
        'period': 300, 'granularity': 10})) is None


# -- in the strategy ---------------------------------------------------------


class _LearnedCycles(audit_cluster.MeanCpuRisk):
    """Ranks by cycles that no longer hold: ``c`` is quiet to it."""

    def predict_risk(self, windows):
        risk = super().predict_risk(windows)
        return np.where(np.asarray(windows.names) == 'c', 0.05, risk)


def _remembered(model, ran, then=None, cooldown=300):
    """The audits the strategy would have remembered over the last look-
    ahead (``2 * cooldown + 60`` s): ``c`` first by the model, the hosts'
    CPU ``then`` (default ``ran``) at the judged audits, ``ran`` at the
    others.
    """
    span = 2.0 * cooldown + 60
    key = rc.memory_key(rc.model_key(model), {
        'period': 300, 'granularity': audit_cluster.STEP})
    memory = plf.PredictedLeastFailure.audit_memory
    now = audit_cluster.NOW
    for t in np.arange(now - span - 3 * SPACING, now, 60.0):
        cpus = then if then and _judged(t, now, span) else ran
        memory.remember(key, float(t), {'b': 0.2, 'c': 0.05}, cpus,
                        keep=10 ** 6)
    return memory, key


#: (hosts' CPU at the audits, at the judged ones, destination): the
#: model's pick ran busier (it lost: ``b`` by CPU now), or calmer (``c``)
LOST_OR_NOT = pytest.mark.parametrize('ran, then, destination', [
    ({'b': 30.0, 'c': 80.0}, None, 'b'),
    ({'b': 80.0, 'c': 30.0}, {'b': 20.0, 'c': 60.0}, 'c')])


def _run_judged(cluster, ran, then, destination, **params):
    """Run the strategy on ``cluster`` after the audits ``_remembered``
    with ``ran`` and ``then``; check the destination, the verdict and its
    indicator. Returns (solution, whether the model lost, memory, key).
    """
    model = _LearnedCycles()
    memory, key = _remembered(model, ran, then)
    strategy = cluster.strategy(bundle=model, **params)
    solution = strategy.execute()
    assert [m[2] for m in ts.moves(solution)] == [destination]
    lost = destination == 'b'
    assert strategy.ranking_verdict.judged == 3
    assert ts.indicators(solution)['ranked_by_model'] == int(not lost)
    return solution, lost, memory, key


@LOST_OR_NOT
def test_the_strategy_ranks_by_cpu_now_when_the_model_lost(
        caplog, ran, then, destination):
    caplog.set_level(logging.INFO)
    _, lost, memory, key = _run_judged(
        tpm._three_hosts(), ran, then, destination, mode='reactive',
        cooldown=300)
    assert ('Destinations ranked by mean CPU over the last 300 s with the '
            'VNF, not by the model: the ranking check: the model\'s first '
            'picks at the 3 audits from 660 s ago ran at 80.0 % CPU since, '
            'least-CPU\'s at 30.0 % (its load cycles may have changed: '
            'retrain it)' in caplog.text) is lost
    assert ('by mean CPU over the period with it (the ranking check: '
            in caplog.text) is lost
    assert ('The model\'s ranking checked: its first picks at the 3 audits '
            'from 660 s ago ran at 3' in caplog.text) is not lost
    # and this audit is remembered for the checks to come
    last = memory.recall(key, audit_cluster.NOW)[-1]
    assert last.at == audit_cluster.NOW
    assert last.scores['c'] == pytest.approx(0.05)
    assert last.cpus['a'] == pytest.approx(95.0)


def test_without_the_check_the_model_ranks_and_nothing_is_remembered():
    model = _LearnedCycles()
    memory, key = _remembered(model, {'b': 30.0, 'c': 80.0})
    before = len(memory.recall(key, audit_cluster.NOW))
    strategy = tpm._three_hosts().strategy(bundle=model, mode='reactive',
                                           cooldown=300,
                                           ranking_check=False)
    solution = strategy.execute()
    assert [m[2] for m in ts.moves(solution)] == ['c']
    assert strategy.ranking_verdict is None
    assert 'ranked_by_model' not in ts.indicators(solution)
    assert len(memory.recall(key, audit_cluster.NOW)) == before


def test_another_models_audits_are_not_judged(caplog):
    caplog.set_level(logging.INFO)
    _remembered(_LearnedCycles(), {'b': 30.0, 'c': 80.0})
    strategy = tpm._three_hosts().strategy(bundle=_LearnedCycles(),
                                           mode='reactive', cooldown=300)
    assert [m[2] for m in ts.moves(strategy.execute())] == ['c']
    assert strategy.ranking_verdict is None
    assert ('The model\'s ranking is not checked: fewer than 3 audits '
            'remembered 660 s ago, 300 s apart, with audits after them '
            '(ranking_check needs audits at least every 300 s'
            in caplog.text)


@pytest.mark.parametrize('mode', ['proactive', 'planned'])
def test_the_model_that_does_not_rank_is_not_checked(mode):
    """Proactive mode, and planned mode's fallback where the forecast
    missed (it ranks by CPU now, fallback_ranking's default).
    """
    model = _LearnedCycles()
    _remembered(model, {'b': 30.0, 'c': 80.0})
    params = tpm.PLANNED if mode == 'planned' else {'mode': mode}
    strategy = tpm._three_hosts().strategy(bundle=model, **params)
    strategy.execute()
    assert strategy.ranking_verdict is None


@LOST_OR_NOT
def test_planned_modes_fallback_checks_the_model_where_it_ranks(
        caplog, ran, then, destination):
    """No forecast checked (a young history): the model ranks the
    fallback's destinations, unless the ranking check says it lost.
    """
    caplog.set_level(logging.INFO)
    solution, lost, _, _ = _run_judged(
        tpm._three_hosts_young(), ran, then, destination, **tpm.PLANNED)
    assert ts.indicators(solution)['planned_on_forecast'] == 0
    assert ('The fallback ranks destinations by mean CPU over the last 300 '
            's with the VNF, not by the model: the ranking check: the '
            'model\'s first picks at the 3 audits from 660 s ago ran at '
            '80.0 % CPU since' in caplog.text) is lost


def test_a_restarted_engine_reads_the_recorded_audits_back(
        caplog, monkeypatch, influxdb_server, influxdb_db):
    """With ``record_risk``, the audits the model lost at were written by
    an engine that has since restarted (this memory is empty): the audit
    reads them back, once, and ranks by CPU now; without it, not judged.
    """
    from watcher_failpredict import conf as fp_conf
    from watcher_failpredict.datasources import risk_recorder as rr
    caplog.set_level(logging.INFO)
    sha = 'cd' * 32
    monkeypatch.setattr(rc, 'model_key',
                        lambda bundle=None, sha256=None: ('sha256', sha))
    model = _LearnedCycles()
    # what the engine before the restart remembered, as it recorded it
    memory, key = _remembered(model, {'b': 30.0, 'c': 80.0})
    tag = rc.record_tag(key)
    assert tag == 'cdcdcdcdcdcdcdcd-p300-g%d' % audit_cluster.STEP
    lines = []
    for a in memory.recall(key, audit_cluster.NOW):
        lines += rr.risk_lines('before', a.at, [
            rr.HostRisk(h, 0.0, a.cpus[h], False, a.scores[h])
            for h in a.scores], model=tag)
    # the restart
    monkeypatch.setattr(plf.PredictedLeastFailure, 'audit_memory',
                        rc.AuditMemory())
    influxdb_server.write_lines(influxdb_db, lines)
    for opt, value in (('influxdb_url', influxdb_server.url),
                       ('influxdb_database', influxdb_db)):
        fp_conf.CONF.set_override(opt, value, group='failpredict')
    try:
        off = tpm._three_hosts().strategy(bundle=model, mode='reactive',
                                          cooldown=300)
        assert [m[2] for m in ts.moves(off.execute())] == ['c']
        assert off.ranking_verdict is None
        fp_conf.CONF.set_override('record_risk', True, group='failpredict')
        monkeypatch.setattr(plf.PredictedLeastFailure, 'audit_memory',
                            rc.AuditMemory())
        on = tpm._three_hosts().strategy(bundle=model, mode='reactive',
                                         cooldown=300)
        solution = on.execute()
    finally:
        for opt in ('record_risk', 'influxdb_url', 'influxdb_database'):
            fp_conf.CONF.clear_override(opt, group='failpredict')
    assert [m[2] for m in ts.moves(solution)] == ['b']
    assert on.ranking_verdict.judged == 3
    assert on.ranking_verdict.model_cpu == pytest.approx(80.0)
    # every audit recorded (two hosts each), all within what the check
    # keeps: a look-ahead and four periods back
    n = len(lines) // 2
    assert n == len(memory.recall(key, audit_cluster.NOW)) > 3
    assert (f'The ranking check read {n} audits of this model back from '
            f'failpredict_risk ([failpredict] record_risk)' in caplog.text)
    # this audit recorded in turn, score and tag included
    body = influxdb_server.query(
        'SELECT "score" FROM "failpredict_risk" WHERE "host" = \'c\' AND '
        f'"model" = \'{tag}\' AND time >= {int(audit_cluster.NOW)}s',
        influxdb_db)
    assert '0.05' in body
