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

"""No InfluxDB password in argv, in any output or in any log (issue 14).

train and evaluate refuse a ``--influxdb`` URL carrying ``user:password@``
without repeating it, and read the password from a file or the
environment. The evaluate run goes through a real influxd with
authentication, in a subprocess whose command line is read from /proc
while it runs, with the project's loggers at DEBUG.
"""

import copy
import io
import os
import subprocess
import sys
import time

import pytest
import yaml

from tests.unit.testbed.test_run import SHORT
from watcher_failpredict.cmd import common
from watcher_failpredict.cmd import main as cli
from watcher_failpredict.datasources.influxdb import local_server

SECRET = 's3cret-Pw-7781'


def _run(*argv):
    out, err = io.StringIO(), io.StringIO()
    try:
        rc = cli.main(list(argv), stdout=out, stderr=err)
    except SystemExit as exc:       # argparse's errors
        rc = exc.code
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.parametrize('command,option,instead', [
    (['train', '--database', 'collectd', '--out', '/tmp/never.joblib'],
     '--influxdb', '--password-file'),
    (['evaluate', '--policies', 'least-cpu'], '--influxdb',
     '--password-file'),
    (['train', '--out', '/tmp/never.joblib'], '--prometheus', 'proxy'),
])
def test_url_with_credentials_refused_without_repeating_it(
        command, option, instead, capsys):
    url = f'http://reader:{SECRET}@127.0.0.1:1'
    rc, out, err = _run(*command, option, url)
    captured = capsys.readouterr()
    text = out + err + captured.out + captured.err
    assert rc == 2
    assert 'embeds credentials' in text and instead in text
    assert SECRET not in text
    assert 'reader' not in text


@pytest.fixture(scope='module')
def auth_server():
    server = local_server.InfluxDBServer(auth=True).start()
    yield server
    server.stop()


def _scenario(tmp_path):
    data = copy.deepcopy(SHORT)
    data['test_duration'] = 900      # long enough for audits to read
    path = tmp_path / 'short.yaml'
    path.write_text(yaml.safe_dump(data))
    return path


def _evaluate_in_subprocess(tmp_path, server, password):
    """evaluate through ``server`` in a child process, the password in a
    file; returns (rc, stdout + stderr, every command line seen).
    """
    pw = tmp_path / 'pw'
    pw.write_text(password + '\n')
    code = ('import logging, sys\n'
            'logging.basicConfig(level=logging.DEBUG)\n'
            'from watcher_failpredict.cmd import main\n'
            'sys.exit(main.main(sys.argv[1:]))\n')
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    env.pop(common.PASSWORD_ENV, None)
    log = tmp_path / 'output.log'
    with open(log, 'wb') as sink:     # a pipe would fill up at DEBUG
        proc = subprocess.Popen(
            [sys.executable, '-c', code, 'evaluate', '--scenario',
             str(_scenario(tmp_path)), '--policies', 'least-cpu',
             '--influxdb', server.url, '--database-prefix', 'credtest',
             '--username', server.admin_user, '--password-file', str(pw)],
            stdout=sink, stderr=subprocess.STDOUT, env=env)
        cmdlines = set()
        deadline = time.monotonic() + 600
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                with open(f'/proc/{proc.pid}/cmdline', 'rb') as f:
                    cmdlines.add(f.read().decode(errors='replace'))
            except OSError:
                pass
            time.sleep(0.2)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    output = log.read_text(errors='replace')
    return proc.returncode, output, cmdlines


def test_evaluate_logs_in_from_a_password_file_and_shows_it_nowhere(
        tmp_path, auth_server):
    rc, output, cmdlines = _evaluate_in_subprocess(
        tmp_path, auth_server, auth_server.admin_password)
    assert rc == 0, output[-3000:]
    assert 'least-cpu' in output
    assert 'credtest_short_least_cpu_3' in auth_server.query(
        'SHOW DATABASES')
    assert cmdlines and all(auth_server.admin_password not in c
                            for c in cmdlines)
    assert 'DEBUG' in output            # the logs were on, at every level
    assert auth_server.admin_password not in output


def test_evaluate_with_a_wrong_password_fails_without_showing_it(
        tmp_path, auth_server):
    rc, output, _ = _evaluate_in_subprocess(tmp_path, auth_server, SECRET)
    assert rc == 2, output[-3000:]
    assert 'authorization failed' in output or '401' in output, \
        output[-3000:]
    assert SECRET not in output
    assert 'Traceback' not in output
