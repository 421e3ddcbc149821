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

"""``watcher-failpredict train`` / ``show-model`` end to end on real influxd.

collectd-shaped history (the synthetic periodic cluster of test_training)
is written into a real InfluxDB; the command reads it back through the
InfluxDB datasource, trains, evaluates and writes the bundle.
"""

import io
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.unit.prediction import test_training as synth
from watcher_failpredict.cmd import common
from watcher_failpredict.cmd import main as cli
from watcher_failpredict.cmd import train as train_cmd
from watcher_failpredict.datasources import collectd_schema as cs
from watcher_failpredict.datasources.influxdb import local_server
from watcher_failpredict.prediction import bundle as bundle_mod

STEP = 10
HOURS = 5
VNF = '0b5e7f2c-6f4e-4c71-9a43-2f1ad0d3c0aa'


def history_lines(end):
    n = HOURS * 3600 // STEP
    start = end - n * STEP
    windows = synth.make_windows(synth.patterns(np.arange(n)), seed=5,
                                 start=start)
    lines = []
    for i, host in enumerate(windows.names):
        cols = zip(windows.times.tolist(), windows.data['cpu'][i].tolist(),
                   np.clip(windows.data['memory'][i], 0, 100).tolist(),
                   windows.data['load'][i].tolist(),
                   (np.cumsum(windows.data['disk'][i]) * STEP / 2).tolist(),
                   (np.cumsum(windows.data['net'][i]) * STEP / 2).tolist())
        for t, cpu, mem, load, disk, net in cols:
            lines += cs.host_lines(
                host, t, cpu_pct=cpu, mem_pct=mem, load=load,
                disk_read_bytes_total=disk, disk_write_bytes_total=disk,
                net_rx_bytes_total=net, net_tx_bytes_total=net,
                mem_forms=('percent',), full=False, loopback=False)
    # a VNF reporting from inside its image: same measurement, UUID name
    for t in windows.times[::30]:
        lines += cs.host_lines(VNF, t, cpu_pct=50.0, full=False)
    return windows, lines


@pytest.fixture(scope='module')
def history(influxdb_server):
    db = 'cmd_train'
    influxdb_server.create_database(db)
    end = int(time.time() // STEP) * STEP
    windows, lines = history_lines(end)
    influxdb_server.write_lines(db, lines, batch=20000)
    yield influxdb_server.url, db, end, windows
    influxdb_server.query(f'DROP DATABASE "{db}"')


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main(list(argv), stdout=out, stderr=err)
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope='module')
def trained(history, tmp_path_factory):
    url, db, end, windows = history
    path = tmp_path_factory.mktemp('model') / 'model.joblib'
    result = run('train', '--influxdb', url, '--database', db,
                 '--since', f'{HOURS}h', '--until', str(end),
                 '--granularity', '10', '--threshold', '90',
                 '--period', '300', '--horizon', '5m', '--window', '600',
                 '--max-samples', '1500', '--out', str(path))
    return path, result


def test_train_end_to_end(history, trained):
    url, db, end, windows = history
    path, (rc, out, err) = trained
    assert rc == 0, err
    # progress: one request per hour of history, bar completed
    assert f'reading InfluxDB [{"#" * 30}] {HOURS}/{HOURS}' in err
    assert 'ignoring 1 UUID-named series' in err
    # held-out evaluation table, model next to persistence
    row = re.search(r'^ROC-AUC\s+([0-9.]+)\s+([0-9.]+)$', out, re.M)
    assert row, out
    model_auc, baseline_auc = float(row.group(1)), float(row.group(2))
    assert model_auc > 0.8 and model_auc > baseline_auc
    for label in ('PR-AUC', 'precision@0.5', 'recall@0.5', 'F1@0.5'):
        assert re.search(rf'^{re.escape(label)}\s+[0-9.]+\s+[0-9.]+$', out,
                         re.M)
    # bundle written, its digest printed, the watcher.conf lines too
    digest = bundle_mod.file_sha256(path)
    assert f'sha256 {digest}' in out
    assert f'[failpredict]\nmodel_path = {path}\nmodel_sha256 = {digest}' \
        in out
    assert os.listdir(path.parent) == ['model.joblib']
    bundle = bundle_mod.load_bundle(path, expected_sha256=digest)
    md = bundle.metadata
    assert md['hosts_seen'] == sorted(windows.names)    # VNF excluded
    assert (md['granularity'], md['window'], md['horizon'],
            md['period'], md['threshold']) == (10, 600, 300, 300, 90.0)
    start = end - HOURS * 3600
    assert md['training_span'][0] == time.strftime(
        '%Y-%m-%dT%H:%M:%S+00:00', time.gmtime(start))
    assert md['evaluation']['model']['roc_auc'] == pytest.approx(
        model_auc, abs=5e-4)
    # the bundle scores the metrics the datasource returns
    risk = bundle.predict_risk(windows.subset(windows.names))
    assert not np.isnan(risk).any()


def test_train_selected_hosts(history, tmp_path):
    url, db, end, _ = history
    path = tmp_path / 'm.joblib'
    rc, out, err = run('train', '--influxdb', url, '--database', db,
                       '--since', '3h', '--until', str(end),
                       '--hosts', 'sine-a,ramp-b,calm-a',
                       '--max-samples', '500', '--chunk', '2h',
                       '--out', str(path))
    assert rc == 0, err
    assert 'reading InfluxDB' in err and '2/2' in err
    md = bundle_mod.load_bundle(path, bundle_mod.file_sha256(path)).metadata
    assert md['hosts_seen'] == ['sine-a', 'ramp-b', 'calm-a']


def test_show_model(trained):
    path, _ = trained
    digest = bundle_mod.file_sha256(path)
    rc, out, err = run('show-model', str(path), '--sha256', digest)
    assert rc == 0, err
    assert f'sha256 {digest}' in out
    assert 'model_kind: gbt_peak' in out and 'granularity: 10' in out
    assert 'hosts_seen: burst, calm-a, calm-b, ramp-a' in out
    assert 'ROC-AUC' in out and 'feature_names: cpu_last' in out


def test_show_model_without_digest_prints_it_and_runs_no_pickle(trained):
    path, _ = trained
    digest = bundle_mod.file_sha256(path)
    rc, out, err = run('show-model', str(path))
    assert rc == 0
    assert out == f'{path}\nsha256 {digest}\n'
    assert err == ('metadata not shown: the file is a pickle, i.e. code; if '
                   f'you trust this file, rerun with --sha256 {digest}\n')
    rc, out, err = run('show-model', str(path), '--allow-unverified')
    assert rc == 0 and 'model_kind: gbt_peak' in out
    assert err == (f'watcher-failpredict: warning: loading {path} without a '
                   'sha256 check (--allow-unverified): it is a pickle, i.e. '
                   'code\n')


def test_compare_models_needs_digest_or_opt_in(trained):
    path, _ = trained
    rc, out, err = run('compare-models', '--bundle', str(path), '--trace',
                       'synthetic')
    assert (rc, out) == (2, '')
    assert err.startswith(f'watcher-failpredict: error: model bundle {path}: '
                          'no sha256 to check it against')
    assert err.count('\n') == 1


def test_show_model_refuses_wrong_digest(trained):
    path, _ = trained
    rc, out, err = run('show-model', str(path), '--sha256', '0' * 64)
    assert rc == 2 and out == ''
    assert err.count('\n') == 1
    assert err.startswith(f'watcher-failpredict: error: model bundle '
                          f'{path}: sha256 is ')


@pytest.mark.parametrize('argv, message', [
    (['--database', 'nowhere'], "(database 'nowhere') could not be read "
                                "(query) after 2 attempt(s): "
                                "InfluxDBQueryError: "),
    (['--database', 'nowhere'], "database not found: nowhere"),
    (['--database', 'empty'], "no host reports CPU in database 'empty'"),
    (['--database', 'cmd_train', '--since', '20m'], 'history too short'),
    (['--database', 'cmd_train', '--since', '5h', '--threshold', '101'],
     'no failure samples'),
    (['--database', 'cmd_train', '--window', '605'],
     'not a multiple of --granularity'),
    (['--database', 'cmd_train', '--password-file', '/nonexistent/pw'],
     'cannot read password file /nonexistent/pw'),
])
def test_errors_are_one_line_exit_2(history, influxdb_server, tmp_path, argv,
                                    message):
    url, _, end, _ = history
    influxdb_server.create_database('empty')
    rc, out, err = run('train', '--influxdb', url, '--until', str(end),
                       '--max-samples', '300', '--out',
                       str(tmp_path / 'm.joblib'), *argv)
    assert rc == 2
    # progress lines may precede it; the error is the one last line
    last = err.splitlines()[-1]
    assert last.startswith('watcher-failpredict: error: ') and message in last
    assert err.count('error:') == 1 and err.endswith('\n')
    assert 'Traceback' not in err
    assert not (tmp_path / 'm.joblib').exists()


def test_unreachable_influxdb(tmp_path):
    rc, out, err = run('train', '--influxdb',
                       f'http://127.0.0.1:{local_server.free_port()}',
                       '--database', 'x', '--out', str(tmp_path / 'm.joblib'))
    assert rc == 2
    assert 'error: InfluxDB at http://127.0.0.1:' in err
    assert "could not be read" in err
    assert 'Traceback' not in err


def test_password_from_file_and_env_never_printed(tmp_path):
    server = local_server.InfluxDBServer(auth=True).start()
    try:
        server.create_database('collectd')
        pw = tmp_path / 'pw'
        pw.write_text('wrong-Secret-42\n')
        base = ['train', '--influxdb', server.url, '--database', 'collectd',
                '--username', server.admin_user, '--out',
                str(tmp_path / 'm.joblib')]
        rc, out, err = run(*base, '--password-file', str(pw))
        assert rc == 2 and 'wrong-Secret-42' not in err + out
        assert 'authorization failed' in err or '401' in err, err
        pw.write_text(server.admin_password + '\n')
        rc, out, err = run(*base, '--password-file', str(pw))
        # authenticated now: the (absent) database is the next complaint
        assert rc == 2 and 'no host reports CPU' in err, err
        os.environ[common.PASSWORD_ENV] = server.admin_password
        try:
            rc, out, err = run(*base)
        finally:
            del os.environ[common.PASSWORD_ENV]
        assert rc == 2 and 'no host reports CPU' in err, err
        assert server.admin_password not in err + out
    finally:
        server.stop()


def test_console_script(tmp_path):
    """The installed entry point: one-line error, status 2."""
    exe = os.path.join(os.path.dirname(sys.executable),
                       'watcher-failpredict')
    if not os.path.exists(exe):
        exe = 'watcher-failpredict'
    proc = subprocess.run([exe, 'show-model', str(tmp_path / 'absent')],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == (f'watcher-failpredict: error: model bundle '
                           f'{tmp_path / "absent"}: no such file\n')


@pytest.mark.parametrize('argv', [
    ['train', '--influxdb', 'http://127.0.0.1:1', '--database', 'd',
     '--out', 'm', '--since', 'soon'],
    ['train', '--database', 'd', '--out', 'm'],
    ['train', '--influxdb', 'u', '--database', 'd', '--out', 'm',
     '--password', 'secret'],     # no password option, on purpose
    [],
])
def test_argparse_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert 'usage: watcher-failpredict' in err and 'Traceback' not in err


def test_default_horizon_is_migration_time_plus_margin():
    """What matters is the destination's state when the migration ends."""
    from watcher_failpredict import conf
    from watcher_failpredict.prediction import migration_time
    c = conf.CONF.failpredict
    err = io.StringIO()
    horizon = train_cmd.auto_horizon(10, 1024, err)
    est = migration_time.precopy(
        1024, migration_time.dirty_rate(1024, 100.0,
                                        c.migration_dirty_fraction),
        c.migration_bandwidth_mbps, c.migration_max_downtime,
        c.migration_setup_time)
    assert 40 < est.seconds < 50            # the paper's ~45 s for 1 GB
    assert horizon % 10 == 0
    assert est.seconds + c.migration_margin <= horizon \
        < est.seconds + c.migration_margin + 10
    assert f'horizon: {horizon} s' in err.getvalue()
    # a bigger VNF takes longer to move, so the horizon grows with it
    assert train_cmd.auto_horizon(10, 512) < horizon \
        < train_cmd.auto_horizon(10, 1200)
    # one whose pre-copy cannot converge gives no horizon but a clear error
    with pytest.raises(common.CommandError, match='does not converge'):
        train_cmd.auto_horizon(10, 4096)


def _load_prometheus_history(prometheus_server):
    """The history as node_exporter series in a real prometheus, started;
    returns (end, windows).
    """
    from watcher_failpredict.datasources.prometheus import (
        local_server as prom_server)
    from watcher_failpredict.datasources.prometheus import exporter_schema
    end = int(time.time() // STEP) * STEP
    windows, _lines = history_lines(end)
    # the series' sample times are the window starts, as the InfluxDB
    # history's; rates are per second
    series = []
    for i, host in enumerate(windows.names):
        series += exporter_schema.host_series(
            host, windows.times, windows.data['cpu'][i],
            np.clip(windows.data['memory'][i], 0, 100),
            windows.data['load'][i], windows.data['disk'][i],
            windows.data['net'][i])
    series += exporter_schema.host_series(
        VNF, windows.times[::30], np.full(windows.times[::30].size, 50.0),
        np.full(windows.times[::30].size, 10.0),
        np.zeros(windows.times[::30].size),
        np.zeros(windows.times[::30].size),
        np.zeros(windows.times[::30].size))
    prometheus_server.load(prom_server.openmetrics(series))
    prometheus_server.start()
    return end, windows


def _train_args(end, path):
    return ('--scrape-interval', '10', '--since', f'{HOURS}h', '--until',
            str(end), '--granularity', '10', '--threshold', '90',
            '--period', '300', '--horizon', '5m', '--window', '600',
            '--max-samples', '1500', '--out', str(path))


def test_train_from_prometheus(prometheus_server, tmp_path):
    """The same history as node_exporter series in a real prometheus:
    ``train --prometheus URL`` reads it and trains an equally good model.
    """
    end, windows = _load_prometheus_history(prometheus_server)
    path = tmp_path / 'model.joblib'
    rc, out, err = run('train', '--prometheus', prometheus_server.url,
                       *_train_args(end, path))
    assert rc == 0, err
    assert f'reading Prometheus [{"#" * 30}] {HOURS}/{HOURS}' in err
    assert 'ignoring 1 UUID-named series' in err
    row = re.search(r'^ROC-AUC\s+([0-9.]+)\s+([0-9.]+)$', out, re.M)
    assert row, out
    model_auc, baseline_auc = float(row.group(1)), float(row.group(2))
    assert model_auc > 0.8 and model_auc > baseline_auc
    digest = bundle_mod.file_sha256(path)
    md = bundle_mod.load_bundle(path, expected_sha256=digest).metadata
    assert md['hosts_seen'] == sorted(windows.names)
    assert md['training_source'] == 'prometheus'


@pytest.fixture
def aetos_login(prometheus_server, tmp_path, monkeypatch):
    """The history behind a token-checking Aetos stand-in on 127.0.0.1
    (tests/unit/datasources/test_prometheus_aetos.py's proxy), a fake
    Keystone whose catalogue names it, and a password file.
    """
    import socketserver
    import threading

    from tests import fake_keystone
    from tests.unit.datasources import test_prometheus_aetos as aetos_test
    end, windows = _load_prometheus_history(prometheus_server)
    proxy = socketserver.ThreadingTCPServer(('127.0.0.1', 0),
                                            aetos_test._AetosProxy)
    proxy.daemon_threads = True
    proxy.seen, proxy.lock = [], threading.Lock()
    proxy.token, proxy.backend = 'tok-aetos', prometheus_server.port
    threading.Thread(target=proxy.serve_forever, args=(0.05,),
                     daemon=True).start()
    proxy.url = (f'http://127.0.0.1:{proxy.server_address[1]}'
                 f'{aetos_test.PREFIX}')
    keystone = fake_keystone.FakeKeystone(
        'watcher', 'Sekr1t-pw', 'service',
        {'metric-storage': proxy.url}, token='tok-aetos').start()
    pw = tmp_path / 'os-password'
    pw.write_text('Sekr1t-pw\n')
    for env in ('OS_PASSWORD', 'OS_AUTH_URL', 'OS_USERNAME',
                'OS_PROJECT_NAME'):
        monkeypatch.delenv(env, raising=False)
    login = ('--os-auth-url', keystone.url, '--os-username', 'watcher',
             '--os-project-name', 'service')
    try:
        yield end, windows, proxy, keystone, login, pw
    finally:
        keystone.stop()
        proxy.shutdown()
        proxy.server_close()


def test_train_through_aetos_from_the_catalogue(aetos_login, tmp_path):
    """``train --aetos`` logs in to Keystone with the password file, finds
    Aetos in the catalogue and reads every request with the token.
    """
    end, windows, proxy, keystone, login, pw = aetos_login
    path = tmp_path / 'model.joblib'
    rc, out, err = run('train', '--aetos', *login, '--os-password-file',
                       str(pw), *_train_args(end, path))
    assert rc == 0, err
    assert keystone.logins == [('watcher', 'Sekr1t-pw')]
    assert proxy.seen and {tok for _p, tok in proxy.seen} == {'tok-aetos'}
    assert 'Sekr1t-pw' not in out + err and 'tok-aetos' not in out + err
    row = re.search(r'^ROC-AUC\s+([0-9.]+)\s+([0-9.]+)$', out, re.M)
    assert row and float(row.group(1)) > 0.8, out
    md = bundle_mod.load_bundle(
        path, expected_sha256=bundle_mod.file_sha256(path)).metadata
    assert md['hosts_seen'] == sorted(windows.names)
    assert md['training_source'] == 'aetos'


def test_train_through_aetos_at_a_url_with_the_env_password(
        aetos_login, tmp_path, monkeypatch):
    end, _windows, proxy, keystone, login, _pw = aetos_login
    monkeypatch.setenv('OS_PASSWORD', 'Sekr1t-pw')
    path = tmp_path / 'model.joblib'
    rc, _out, err = run('train', '--aetos', proxy.url, *login,
                        *_train_args(end, path))
    assert rc == 0, err
    assert keystone.logins == [('watcher', 'Sekr1t-pw')]
    assert path.exists()


def test_train_through_aetos_refusals(aetos_login, tmp_path, monkeypatch,
                                      capsys):
    end, _windows, proxy, keystone, login, pw = aetos_login
    path = tmp_path / 'model.joblib'
    # no password anywhere: a usage error naming where to put it
    with pytest.raises(SystemExit) as exc:
        cli.main(['train', '--aetos', *login, *_train_args(end, path)])
    assert exc.value.code == 2
    assert '--os-password-file' in capsys.readouterr().err
    # a wrong password: Keystone refuses, the command says so, no secret
    pw.write_text('wrong-pw\n')
    rc, out, err = run('train', '--aetos', *login, '--os-password-file',
                       str(pw), *_train_args(end, path))
    assert rc != 0 and 'Traceback' not in err
    assert 'Unauthorized' in err or '401' in err, err
    assert 'wrong-pw' not in out + err
    assert keystone.logins and not proxy.seen and not path.exists()
    # credentials in the URL are refused without repeating them
    with pytest.raises(SystemExit):
        cli.main(['train', '--aetos', 'http://u:Sekr1t-pw@127.0.0.1:9/',
                  *login, '--out', str(path)])
    err = capsys.readouterr().err
    assert 'embeds credentials' in err and 'Sekr1t-pw' not in err
    # one backend at a time
    with pytest.raises(SystemExit):
        cli.main(['train', '--aetos', '--prometheus', 'http://127.0.0.1:9',
                  '--out', str(path)])
    assert '--prometheus excludes --aetos' in capsys.readouterr().err


def test_train_prometheus_excludes_influxdb(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(['train', '--prometheus', 'http://127.0.0.1:9',
                  '--influxdb', 'http://127.0.0.1:9', '--out',
                  str(tmp_path / 'm.joblib')])
    assert exc.value.code == 2
    assert '--prometheus excludes --influxdb' in capsys.readouterr().err


def test_train_schema_collectd_reads_write_prometheus_series(
        prometheus_server, tmp_path):
    """--schema collectd lists hosts by collectd's CPU series: a
    prometheus holding only node_exporter series has none of them.
    """
    end, _windows = _load_prometheus_history(prometheus_server)
    path = tmp_path / 'model.joblib'
    rc, _out, err = run('train', '--prometheus', prometheus_server.url,
                        '--schema', 'collectd', *_train_args(end, path))
    assert rc != 0 and 'Traceback' not in err
    assert "no host reports collectd_cpu_percent with a 'fqdn' label" in err
    assert not path.exists()
