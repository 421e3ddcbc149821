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

"""Write each audit's predicted risks and planned moves back to InfluxDB.

Opt-in (``[failpredict] record_risk = true``). An operator who sees a
migration wants to see *why*: which hosts the model scored how risky at that
audit, which were in failure state, and what moved where. Writing that next
to collectd's own series lets one Grafana dashboard
(``etc/grafana/failpredict-dashboard.json``) plot host CPU, predicted risk
and migrations on the same time axis.

Two measurements, in the database the strategy reads
(``[failpredict] influxdb_database``):

* ``failpredict_risk``, tags ``host`` (collectd name), ``audit`` (audit
  UUID) and ``model`` (which model scored the audit, and on which period
  and granularity: ``<SHA-256 prefix>-p<period>-g<granularity>``; absent
  for a model that is not a file), fields ``risk`` (predicted probability
  of failure state within the model's horizon), ``score`` (what the model
  ranks destinations by: its predicted peak CPU %, else the risk),
  ``cpu`` (mean CPU % over the trigger period) and ``failing`` (boolean:
  in failure state at the audit);
* ``failpredict_move``, tags ``audit``, ``source``, ``destination``, fields
  ``instance`` (the instance UUID, a string) and ``moved`` (integer 1, so
  that ``count``/``sum`` give migrations per interval).

Recording is observability, never a reason to fail an audit: the strategy
calls :func:`record_audit`, which logs a warning and returns 0 when the write
fails. What is recorded also outlives the decision engine: the ranking
check reads a model's recent audits back (:meth:`RiskRecorder.audits`)
when its own memory lacks them, after a restart or when several engines
share the audits.
"""

import collections
import math

from oslo_log import log

LOG = log.getLogger(__name__)

RISK = 'failpredict_risk'
MOVE = 'failpredict_move'

#: One evaluated host at audit time; risk, cpu or score may be NaN (left
#: out).
HostRisk = collections.namedtuple('HostRisk', 'host risk cpu failing score',
                                  defaults=(math.nan,))

#: One audit read back: its time (Unix s), each host's score and CPU.
RecordedAudit = collections.namedtuple('RecordedAudit', 'at scores cpus')

#: One planned live migration.
Move = collections.namedtuple('Move', 'instance source destination')


def escape_tag(value, what='tag value'):
    """``value`` escaped for a line-protocol tag value.

    Commas, equal signs and spaces are escaped with a backslash. Empty
    values, line breaks and backslashes are refused (a backslash before the
    separator would silently change the point): hostnames and UUIDs never
    contain them.
    """
    text = str(value)
    if not text:
        raise ValueError(f'empty {what}')
    if '\\' in text or '\n' in text or '\r' in text:
        raise ValueError(f'{what} {text!r} contains a backslash or a line '
                         f'break')
    return text.replace(',', r'\,').replace('=', r'\=').replace(' ', r'\ ')


def escape_string_field(value):
    """``value`` as a double-quoted line-protocol string field."""
    text = str(value)
    if '\n' in text or '\r' in text:
        raise ValueError(f'string field {text!r} contains a line break')
    return '"' + text.replace('\\', '\\\\').replace('"', '\\"') + '"'


def _float_field(name, value):
    if value is None:
        return None
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        return None
    return f'{name}={value!r}'


def _line(measurement, tags, fields, at):
    tag_text = ''.join(f',{k}={escape_tag(v, f"{k} tag")}'
                       for k, v in sorted(tags.items()))
    return f'{measurement}{tag_text} {",".join(fields)} {int(at)}'


def risk_lines(audit, at, hosts, moves=(), model=None):
    """Line-protocol points of one audit (time ``at``, Unix seconds).

    :param audit: the audit UUID (tag ``audit``)
    :param model: the ``model`` tag of the host points, or None
    :param hosts: iterable of :class:`HostRisk`; a host whose risk and CPU
        are both missing gives no point
    :param moves: iterable of :class:`Move`
    :raises ValueError: on a tag value that cannot be written safely (it
        names the value)
    """
    lines = []
    tags = {'audit': audit}
    if model:
        tags['model'] = model
    for h in hosts:
        fields = [f for f in (_float_field('risk', h.risk),
                              _float_field('cpu', h.cpu)) if f]
        if not fields:
            continue
        score = _float_field('score', h.score)
        if score:
            fields.append(score)
        fields.append(f'failing={"true" if h.failing else "false"}')
        lines.append(_line(RISK, dict(tags, host=h.host), fields, at))
    for m in moves:
        lines.append(_line(
            MOVE, {'audit': audit, 'source': m.source,
                   'destination': m.destination},
            [f'instance={escape_string_field(m.instance)}', 'moved=1i'], at))
    return lines


class RiskRecorder:
    """Writes line-protocol points to the ``[failpredict]`` InfluxDB.

    Keyword arguments override the options as for
    :class:`~watcher_failpredict.datasources.influxdb.InfluxDBDataSource`,
    through the same client (credentials, TLS, redaction of secrets in
    errors). ``retries`` defaults to 0: an audit does not wait on a
    dashboard.
    """

    def __init__(self, retries=0, **kwargs):
        from watcher_failpredict.datasources.influxdb import datasource
        self.client = datasource.configured_client(retries=retries, **kwargs)

    @property
    def url(self):
        return self.client.url

    @property
    def database(self):
        return self.client.database

    def write(self, lines):
        """Write ``lines`` in one request; MetricsUnavailable on failure."""
        lines = list(lines)
        if lines:
            self.client.write(lines, batch=len(lines))
        return len(lines)

    def audits(self, model, start, end, deadline=None):
        """The audits recorded with tag ``model`` in ``[start, end)``
        (Unix s), oldest first, in one request: each host's score and CPU
        (a host recorded without a score is left out of that audit).

        :param deadline: a :class:`~.deadline.Deadline` the read ends by
            (the audit's), or None
        :raises MetricsUnavailable: the read failed
        """
        (raw,) = self.client.query(
            [f'SELECT "score", "cpu" FROM "{RISK}" WHERE "model" = $model '
             f'AND time >= {int(start)}s AND time < {int(end)}s '
             f'GROUP BY "host"'], {'model': str(model)}, deadline=deadline)
        scores, cpus = collections.defaultdict(dict), \
            collections.defaultdict(dict)
        for series in raw.get('series', ()):
            host = series['tags']['host']
            col = {c: i for i, c in enumerate(series['columns'])}
            for row in series.get('values', ()):
                score, cpu = row[col['score']], row[col['cpu']]
                if score is None or cpu is None:
                    continue
                at = float(row[col['time']])
                scores[at][host] = float(score)
                cpus[at][host] = float(cpu)
        return [RecordedAudit(at, scores[at], cpus[at])
                for at in sorted(scores)]


def record_audit(audit, at, hosts, moves=(), recorder=None, model=None):
    """Write one audit's risks and moves (``model``: the host points'
    tag); never raises.

    :returns: the number of points written (0 when recording failed; the
        failure is logged as a warning naming the InfluxDB and the reason)
    """
    try:
        lines = risk_lines(audit, at, hosts, moves, model)
        recorder = recorder or RiskRecorder()
        return recorder.write(lines)
    except Exception as exc:  # observability must not fail the audit
        LOG.warning('Could not record the predicted risks of audit %s '
                    '([failpredict] record_risk): %s: %s', audit,
                    type(exc).__name__, exc)
        return 0
