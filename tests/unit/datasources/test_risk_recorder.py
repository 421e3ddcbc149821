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

"""Opt-in risk recording and the Grafana dashboard, on a real influxd.

The strategy (with ``[failpredict] record_risk = true``) writes its
predictions through the recorder into a real InfluxDB; then every query of
``etc/grafana/failpredict-dashboard.json`` runs against it, with Grafana's
macros substituted, and must return the series that were written.
"""

import json
import logging
import os
import re

import pytest

from tests.unit.strategies import test_strategy as ts
from watcher_failpredict import conf as fp_conf
from watcher_failpredict.datasources import collectd_schema as cs
from watcher_failpredict.datasources.influxdb import local_server
from watcher_failpredict.datasources import risk_recorder as rr

DASHBOARD = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'etc',
                         'grafana', 'failpredict-dashboard.json')
AUDIT = '5a1f0c2e-1b9d-4c77-9e44-0d7c3f2a9b10'
LOGGER = 'watcher_failpredict.datasources.risk_recorder'


# -- line protocol ------------------------------------------------------------


def test_risk_lines_escape_tags_and_skip_missing_fields():
    lines = rr.risk_lines('a 1', 1700000000.7, [
        rr.HostRisk('web 1,rack=2', 0.25, 93.5, True),
        rr.HostRisk('calm', float('nan'), 10.0, False),
        rr.HostRisk('blind', float('nan'), float('nan'), False),
    ], [rr.Move('u"1', 'web 1,rack=2', 'calm')])
    assert lines == [
        r'failpredict_risk,audit=a\ 1,host=web\ 1\,rack\=2 '
        r'risk=0.25,cpu=93.5,failing=true 1700000000',
        r'failpredict_risk,audit=a\ 1,host=calm cpu=10.0,failing=false '
        r'1700000000',
        r'failpredict_move,audit=a\ 1,destination=calm,'
        r'source=web\ 1\,rack\=2 instance="u\"1",moved=1i 1700000000',
    ]


@pytest.mark.parametrize('bad', ['', 'a\\b', 'a\nb'])
def test_unsafe_tag_values_are_refused_by_name(bad):
    with pytest.raises(ValueError, match='host tag'):
        rr.risk_lines('a', 1, [rr.HostRisk(bad, 0.1, 1.0, False)])


def test_score_and_model_tag_are_written_when_given():
    lines = rr.risk_lines('a', 1700000000, [
        rr.HostRisk('h', 0.25, 93.5, True, 97.25),
        rr.HostRisk('g', 0.5, 50.0, False)], model='0123abcd-p300-g10')
    assert lines == [
        'failpredict_risk,audit=a,host=h,model=0123abcd-p300-g10 '
        'risk=0.25,cpu=93.5,score=97.25,failing=true 1700000000',
        'failpredict_risk,audit=a,host=g,model=0123abcd-p300-g10 '
        'risk=0.5,cpu=50.0,failing=false 1700000000']


def test_a_models_audits_read_back_in_one_request(influxdb_server,
                                                  influxdb_db):
    rec = rr.RiskRecorder(url=influxdb_server.url, database=influxdb_db)
    host = "web 1,rack=2 'x'"
    for k, at in enumerate((1000, 1060, 1120)):
        rec.write(rr.risk_lines(f'a{k}', at, [
            rr.HostRisk(host, 0.1, 50.0 + k, False, 60.0 + k),
            rr.HostRisk('calm', 0.0, 10.0, False, 12.5),
            rr.HostRisk('unscored', 0.0, 20.0, False)], model='m-p300-g10'))
    # another model's audit, and one recorded without a model
    rec.write(rr.risk_lines('other', 1060, [
        rr.HostRisk('calm', 0.0, 99.0, False, 99.0)], model='n-p300-g10'))
    rec.write(rr.risk_lines('old', 1060, [
        rr.HostRisk('calm', 0.0, 98.0, False)]))
    before = rec.client.request_count
    got = rec.audits('m-p300-g10', 1060, 1121)
    assert rec.client.request_count - before == 1
    assert [a.at for a in got] == [1060.0, 1120.0]
    assert got[0].scores == {host: 61.0, 'calm': 12.5}
    assert got[0].cpus == {host: 51.0, 'calm': 10.0}
    assert got[1].cpus[host] == 52.0
    # a model tag that looks like InfluxQL is only a value
    assert rec.audits("m' OR model =~ /.*/ OR model = 'x", 0, 2000) == []


def test_round_trip_through_real_influxd(influxdb_server, influxdb_db):
    rec = rr.RiskRecorder(url=influxdb_server.url, database=influxdb_db)
    host = 'web 1,rack=2 "x"'
    n = rec.write(rr.risk_lines(AUDIT, 1700000000, [
        rr.HostRisk(host, 0.75, 95.0, True)],
        [rr.Move('vm-1', host, 'calm')]))
    assert n == 2
    body = json.loads(influxdb_server.query(
        'SELECT "risk", "cpu", "failing", "host", "audit" FROM '
        '"failpredict_risk"', influxdb_db))
    (row,) = body['results'][0]['series'][0]['values']
    assert row[1:] == [0.75, 95.0, True, host, AUDIT]
    body = json.loads(influxdb_server.query(
        'SELECT "instance", "moved", "source", "destination" FROM '
        '"failpredict_move"', influxdb_db))
    (row,) = body['results'][0]['series'][0]['values']
    assert row[1:] == ['vm-1', 1, host, 'calm']


def test_record_audit_never_raises_when_influxdb_is_down(caplog):
    server = local_server.InfluxDBServer().start()
    url = server.url
    server.stop()
    rec = rr.RiskRecorder(url=url, database='collectd', timeout=2,
                          password='pw-not-logged')
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert rr.record_audit(
            AUDIT, 1, [rr.HostRisk('h', 0.1, 5.0, False)],
            recorder=rec) == 0
    text = caplog.text
    assert AUDIT in text and url in text and 'record_risk' in text
    assert 'pw-not-logged' not in text


# -- the strategy records, the dashboard reads -------------------------------


def _dashboard_queries():
    with open(DASHBOARD) as f:
        dash = json.load(f)
    out = []
    for panel in dash['panels']:
        for target in panel.get('targets', []):
            assert target.get('rawQuery'), panel['title']
            assert target['datasource'] == '${DS_INFLUXDB}', panel['title']
            out.append((panel['title'], target['query']))
    var = dash['templating']['list'][0]
    return out, var


def _grafana(query, start, end, hosts):
    """Substitute Grafana's macros as its InfluxDB datasource does."""
    host_re = '(' + '|'.join(re.escape(h) for h in hosts) + ')'
    return (query.replace('$timeFilter',
                          f'time >= {int(start)}s and time <= {int(end)}s')
            .replace('$__interval', '10s')
            .replace('$host', host_re))


@pytest.fixture
def recorded(influxdb_server, influxdb_db):
    """Two audits of a real strategy run, recorded next to collectd CPU."""
    fp_conf.CONF.set_override('record_risk', True, group='failpredict')
    fp_conf.CONF.set_override('influxdb_url', influxdb_server.url,
                              group='failpredict')
    fp_conf.CONF.set_override('influxdb_database', influxdb_db,
                              group='failpredict')
    try:
        audits = []
        for k in range(2):
            c = ts.Cluster()
            c.host('src', 95.0)
            c.host('calm', 20.0)
            c.host('busy', 60.0)
            c.instance('vm1', 'src', cpu=100, vcpus=2)
            strategy = c.strategy()
            strategy.clock = lambda k=k: ts.NOW + 60 * k
            audit = type('Audit', (), {'uuid': f'audit-{k}'})()
            solution = strategy.execute(audit=audit)
            assert ts.moves(solution) == [('vm1', 'src', 'calm')]
            audits.append(audit.uuid)
    finally:
        for opt in ('record_risk', 'influxdb_url', 'influxdb_database'):
            fp_conf.CONF.clear_override(opt, group='failpredict')
    lines = []
    for i in range(12):
        t = ts.NOW - 60 + 10 * i
        for host, cpu in (('src', 95.0), ('calm', 20.0), ('busy', 60.0)):
            lines += cs.host_lines(host, t, cpu_pct=cpu)
    influxdb_server.write_lines(influxdb_db, lines)
    return influxdb_server, influxdb_db, audits


def test_strategy_records_every_evaluated_host_and_move(recorded):
    server, db, audits = recorded
    body = json.loads(server.query(
        'SELECT "risk", "cpu", "failing" FROM "failpredict_risk" '
        'GROUP BY "audit", "host"', db))
    got = {(s['tags']['audit'], s['tags']['host']): s['values'][0][1:]
           for s in body['results'][0]['series']}
    assert set(got) == {(a, h) for a in audits
                        for h in ('src', 'calm', 'busy')}
    # stand-in model: risk = CPU / 100, at audit time (before the move)
    assert got[(audits[0], 'src')] == pytest.approx([0.95, 95.0, True])
    assert got[(audits[0], 'calm')] == pytest.approx([0.20, 20.0, False])
    body = json.loads(server.query(
        'SELECT "instance" FROM "failpredict_move" GROUP BY "audit", '
        '"source", "destination"', db))
    moves = sorted((s['tags']['audit'], s['values'][0][1],
                    s['tags']['source'], s['tags']['destination'])
                   for s in body['results'][0]['series'])
    assert moves == [(a, 'vm1', 'src', 'calm') for a in audits]


def test_recording_off_by_default_writes_nothing(influxdb_server,
                                                 influxdb_db):
    assert fp_conf.CONF.failpredict.record_risk is False
    fp_conf.CONF.set_override('influxdb_url', influxdb_server.url,
                              group='failpredict')
    fp_conf.CONF.set_override('influxdb_database', influxdb_db,
                              group='failpredict')
    try:
        c = ts.Cluster()
        c.host('src', 95.0)
        c.host('calm', 20.0)
        c.instance('vm1', 'src', cpu=100, vcpus=2)
        assert ts.moves(c.strategy().execute()) == [('vm1', 'src', 'calm')]
    finally:
        for opt in ('influxdb_url', 'influxdb_database'):
            fp_conf.CONF.clear_override(opt, group='failpredict')
    body = json.loads(influxdb_server.query('SHOW MEASUREMENTS',
                                            influxdb_db))
    assert 'series' not in body['results'][0]


def test_recording_failure_does_not_fail_the_audit(caplog):
    server = local_server.InfluxDBServer().start()
    url = server.url
    server.stop()
    fp_conf.CONF.set_override('record_risk', True, group='failpredict')
    fp_conf.CONF.set_override('influxdb_url', url, group='failpredict')
    try:
        c = ts.Cluster()
        c.host('src', 95.0)
        c.host('calm', 20.0)
        c.instance('vm1', 'src', cpu=100, vcpus=2)
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            solution = c.strategy().execute()
    finally:
        for opt in ('record_risk', 'influxdb_url'):
            fp_conf.CONF.clear_override(opt, group='failpredict')
    assert ts.moves(solution) == [('vm1', 'src', 'calm')]
    assert ts.indicators(solution)['migrations_planned'] == 1
    assert 'Could not record the predicted risks' in caplog.text


def test_dashboard_queries_return_the_written_series(recorded):
    server, db, audits = recorded
    queries, var = _dashboard_queries()
    assert len(queries) == 5
    hosts = json.loads(server.query(var['query'], db))
    assert {v[1] for v in hosts['results'][0]['series'][0]['values']} == {
        'src', 'calm', 'busy'}
    start, end = ts.NOW - 3600, ts.NOW + 3600
    results = {}
    for title, query in queries:
        assert '$timeFilter' in query, title
        body = json.loads(server.query(
            _grafana(query, start, end, ['src', 'calm', 'busy']), db))
        res = body['results'][0]
        assert 'error' not in res, (title, res)
        assert res.get('series'), (title, query)
        results[title] = res['series']

    def by(title, tag):
        return {s['tags'][tag]: [v[1] for v in s['values']]
                for s in results[title]}

    cpu = by('Host CPU (%)', 'host')
    assert set(cpu) == {'src', 'calm', 'busy'}
    assert all(v == pytest.approx(95.0) for v in cpu['src'])
    risk = by('Predicted risk of failure', 'host')
    assert set(risk) == {'src', 'calm', 'busy'}
    assert sorted(risk['src']) == pytest.approx([0.95, 0.95])
    (failing,) = results['Hosts in failure state at audits']
    assert sum(v[1] for v in failing['values']) == 2  # src, at 2 audits
    assert sum(by('Planned live migrations (by source host)',
                  'source')['src']) == 2
    table = results['Planned migrations']
    assert sorted((s['tags']['audit'], s['tags']['destination'])
                  for s in table) == [(a, 'calm') for a in audits]
    # a host filter narrows the per-host panels
    (title, query) = queries[1]
    body = json.loads(server.query(_grafana(query, start, end, ['calm']),
                                   db))
    assert {s['tags']['host'] for s in body['results'][0]['series']} == {
        'calm'}
