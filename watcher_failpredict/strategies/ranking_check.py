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

"""Check the trained model's ranking against what followed.

A model trained on the load's old cycles ranks destinations by cycles that
may no longer hold, and nothing in the present says so. What does say so
is the past: at an audit one look-ahead ago, the host the model ranked
first (least predicted peak CPU) and the host with the least CPU then,
and how busy each actually ran since. When, over the last few such audits,
the model's first picks ran busier than the least-CPU ones, the model is
ranking by cycles that changed, and the audit ranks by CPU now instead.

Two parts, each small:

* :class:`AuditMemory`: each audit's per-host score and CPU, remembered
  by the decision engine's process (no metric read, nothing written;
  with ``record_risk`` the strategy merges back what it recorded);
* :func:`judge`: a pure function of those records and the clock.
"""

import collections
import math
import threading

#: Past audits judged, one ``spacing`` apart.
DECISIONS = 3

#: Audits remembered per model at most, whatever the cadence: the memory
#: of a process stays bounded (about 40 MB at 1,000 hosts; 200 audits span
#: the check at audits up to every 12 s).
MAX_AUDITS = 200

#: One past audit: time (Unix s), and per host (collectd name) the model's
#: score (predicted peak CPU %, or risk without a peak regressor) and the
#: mean CPU % over the trigger period.
Audit = collections.namedtuple('Audit', 'at scores cpus')

#: The check's outcome. ``judged``: past audits compared; ``model_cpu`` and
#: ``least_cpu``: mean CPU % their first picks ran at over the span after
#: them; ``picks``: [(audit time, model's pick, least-CPU pick, CPU % the
#: model's ran at, CPU % least-CPU's ran at)].
Verdict = collections.namedtuple(
    'Verdict', 'judged model_cpu least_cpu picks')


def model_key(bundle=None, sha256=None):
    """Who scored the audits: a model file by its SHA-256, or a model
    object handed to the strategy (tests, the testbed, the benchmarks).
    """
    return ('sha256', sha256) if sha256 else ('object', id(bundle))


def memory_key(model, params):
    """The memory an audit is judged in and remembered by: its model
    (:func:`model_key`) and the period and granularity its scores and CPU
    are computed on.
    """
    return (model, int(params['period']), int(params['granularity']))


def record_tag(key):
    """The ``model`` tag ``[failpredict] record_risk`` writes the audits
    of memory ``key`` (:func:`memory_key`) under
    (:mod:`~watcher_failpredict.datasources.risk_recorder`), or None for a
    model that is not a file: its audits cannot be told from another
    model's once the process that held it is gone.
    """
    (kind, ident), period, granularity = key
    if kind != 'sha256':
        return None
    return f'{ident[:16]}-p{period}-g{granularity}'


def keep_seconds(span, spacing, decisions=DECISIONS):
    """How long an audit is worth remembering: until it is older than the
    oldest audit :func:`judge` looks for, with a spacing to spare.
    """
    return span + (decisions + 1) * spacing


def model_lost(verdict):
    """Whether the model's picks ran busier than least-CPU's (a tie keeps
    the model).
    """
    return verdict is not None and verdict.model_cpu > verdict.least_cpu


class AuditMemory:
    """Recent audits' per-host scores and CPU, per model, in this process.

    Watcher builds a strategy per audit; this memory outlives them in the
    decision engine, whose worker threads may run audits at once (hence the
    lock). It forgets on restart: the check then waits for a look-ahead of
    new audits, or reads them back from what ``record_risk`` wrote
    (:meth:`merge`). A clock that went backwards (another timeline: a test, a
    testbed run) drops what is now in the future.
    """

    def __init__(self, max_audits=MAX_AUDITS):
        self.max_audits = int(max_audits)
        self._audits = {}
        self._lock = threading.Lock()

    def remember(self, key, at, scores, cpus, keep):
        """Record one audit for ``key`` (the model), forgetting audits
        older than ``keep`` seconds before ``at``.
        """
        at = float(at)
        with self._lock:
            audits = [a for a in self._audits.get(key, ())
                      if at - keep <= a.at < at]
            audits.append(Audit(at, dict(scores), dict(cpus)))
            self._audits[key] = audits[-self.max_audits:]

    def merge(self, key, audits, now, keep):
        """Add ``audits`` read back from elsewhere (``at``, ``scores``,
        ``cpus`` each) to those remembered for ``key``, within ``keep``
        seconds before ``now``; an audit at a time already remembered is
        kept as it was. Returns how many were added.
        """
        now = float(now)
        with self._lock:
            mine = [a for a in self._audits.get(key, ())
                    if now - keep <= a.at <= now]
            known = {a.at for a in mine}
            new = {float(a.at): Audit(float(a.at), dict(a.scores),
                                      dict(a.cpus))
                   for a in audits if now - keep <= float(a.at) <= now and
                   float(a.at) not in known}
            self._audits[key] = sorted(
                mine + list(new.values()),
                key=lambda a: a.at)[-self.max_audits:]
            return len(new)

    def recall(self, key, now):
        """The audits remembered for ``key`` up to ``now``, oldest first."""
        with self._lock:
            return [a for a in self._audits.get(key, ()) if a.at <= now]


def _first(values, names):
    """The name with the least value (ties: the first name in order)."""
    return min(names, key=lambda n: (values[n], n))


def _nearest(audits, target, tolerance):
    best = None
    for a in audits:
        gap = abs(a.at - target)
        if gap <= tolerance and (best is None or gap < abs(best.at - target)):
            best = a
    return best


def judge(audits, now, span, spacing, decisions=DECISIONS):
    """Compare the model's first pick with least-CPU's at the audits
    ``span``, ``span + spacing``, ... seconds before ``now``.

    Each pick is scored by the mean of its host's CPU at the audits from
    ``spacing`` to ``span`` seconds after the one judged (each CPU a mean
    over the period before it, so together they cover the span). A past
    audit is judged only if an audit stands within ``spacing / 2`` of its
    time and at least two follow it, the last past the span's half; only
    hosts scored then and seen at every one of those count.

    :returns: a :class:`Verdict`, or None unless all ``decisions`` past
        audits could be judged (too few audits remembered: one-shot
        audits, a restarted decision engine, audits further apart than
        ``spacing``): fewer picks are too few to overrule the model
    """
    audits = sorted(audits, key=lambda a: a.at)
    judged, model_cpu, least_cpu, picks = 0, 0.0, 0.0, []
    for k in range(int(decisions)):
        past = _nearest(audits, now - span - k * spacing, spacing / 2.0)
        if past is None:
            continue
        after = [a for a in audits
                 if past.at + spacing <= a.at <= past.at + span]
        if len(after) < 2 or after[-1].at < past.at + span / 2.0:
            continue
        ran = {}
        for name, score in past.scores.items():
            cpu = past.cpus.get(name, math.nan)
            seen = [a.cpus.get(name, math.nan) for a in after]
            if math.isfinite(score) and math.isfinite(cpu) and \
                    all(math.isfinite(c) for c in seen):
                ran[name] = sum(seen) / len(seen)
        if len(ran) < 2:
            continue
        names = sorted(ran)
        by_model = _first(past.scores, names)
        by_cpu = _first(past.cpus, names)
        judged += 1
        model_cpu += ran[by_model]
        least_cpu += ran[by_cpu]
        picks.append((past.at, by_model, by_cpu, ran[by_model],
                      ran[by_cpu]))
    if judged < decisions:
        # two near-ties decided a move on azure-balanced's validation
        # stretch against the model, which was right (doc/source/testbed.rst)
        return None
    return Verdict(judged, model_cpu / judged, least_cpu / judged, picks)
