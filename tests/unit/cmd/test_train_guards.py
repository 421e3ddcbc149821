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

"""``train`` refuses what it cannot do before doing anything, and leaves
nothing behind when stopped (issue 14 point 9); the real CLI throughout.
"""

import configparser
import io
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from tests.unit.datasources import test_influxdb_faults as faults
from watcher_failpredict.cmd import main as cli
from watcher_failpredict.datasources.influxdb import local_server

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
SMALL_TRACE = ['--trace', 'synthetic', '--trace-opt', 'n_hosts=5',
               '--trace-opt', 'days=0.4']


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main(list(argv), stdout=out, stderr=err)
    return rc, out.getvalue(), err.getvalue()


def console_entry():
    """``module:function`` of the watcher-failpredict console script."""
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(REPO, 'setup.cfg'))
    for line in cfg['entry_points']['console_scripts'].splitlines():
        name, _, target = line.partition('=')
        if name.strip() == 'watcher-failpredict':
            return target.strip()
    raise AssertionError('no watcher-failpredict console script')


def console_script(prelude=''):
    """Python source doing what the installed console script does (import
    the entry point, exit with what it returns), after ``prelude``.
    """
    module, _, function = console_entry().partition(':')
    return prelude + textwrap.dedent(f'''
        import sys
        from {module} import {function}
        sys.exit({function}())
        ''')


def spawn(code, *argv):
    return subprocess.Popen(
        [sys.executable, '-W', 'ignore', '-c', code, *argv], cwd=REPO,
        env=dict(os.environ, PYTHONPATH=REPO), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize('option, value, message', [
    ('--until', 'nan', "argument --until: 'nan' is not a finite time"),
    ('--until', 'inf', "argument --until: 'inf' is not a finite time"),
    ('--timeout', '0', "argument --timeout: '0' must be a finite number > 0"),
    ('--timeout', '-1', "argument --timeout: '-1' must be a finite number "
                        "> 0"),
    ('--timeout', 'inf', "argument --timeout: 'inf' must be a finite"),
    ('--since', '100000w', "argument --since: '100000w' is 60480000000 s, "
                           "more than the allowed maximum 366d (31622400 "
                           "s): the whole history is held in memory"),
    ('--since', '9' * 400, 'is not a finite duration'),
])
def test_nonsense_values_refused_by_argparse_naming_the_option(
        capsys, tmp_path, option, value, message):
    with pytest.raises(SystemExit) as exc:
        cli.main(['train', '--influxdb', 'http://127.0.0.1:1', '--database',
                  'd', '--out', str(tmp_path / 'm.joblib'), option, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith('usage: watcher-failpredict train')
    last = err.splitlines()[-1]
    assert last.startswith('watcher-failpredict train: error: ')
    assert f'error: argument {option}: ' in last and message in last, last
    assert 'Traceback' not in err


def test_since_at_the_maximum_is_accepted():
    from watcher_failpredict.cmd import train as train_cmd
    parse = train_cmd.common.duration_at_most(train_cmd.MAX_SINCE,
                                              train_cmd.SINCE_WHY)
    assert parse('366d') == 366 * 86400 == train_cmd.MAX_SINCE
    assert parse('52w') == 52 * 604800


def _bad_outs(tmp_path):
    missing = tmp_path / 'no-such-dir' / 'm.joblib'
    return [
        (str(tmp_path), f'--out {tmp_path} is a directory; give the '
                        f'bundle\'s file path, e.g. {tmp_path}/model.joblib'),
        ('/proc/self/model.joblib', 'is under /proc, a kernel file system '
                                    'that cannot hold a model bundle'),
        ('/proc', '--out /proc: /proc is under /proc'),
        ('/dev/null', '--out /dev/null exists and is not a regular file'),
        (str(missing), f'directory {missing.parent} does not exist'),
    ]


def test_bad_out_fails_before_any_read(tmp_path):
    """An InfluxDB that nobody answers on: had the read started, its error
    would come first.
    """
    url = f'http://127.0.0.1:{local_server.free_port()}'
    for out, message in _bad_outs(tmp_path):
        rc, stdout, err = run('train', '--influxdb', url, '--database', 'x',
                              '--out', out)
        assert (rc, stdout) == (2, ''), err
        assert err == f'watcher-failpredict: error: {err[28:]}'
        assert message in err and err.count('\n') == 1, err
    assert sorted(os.listdir(tmp_path)) == []


def test_bad_out_fails_before_the_trace_is_read(tmp_path):
    for out, message in _bad_outs(tmp_path):
        rc, stdout, err = run('train', *SMALL_TRACE, '--out', out)
        assert (rc, stdout) == (2, '')
        # the trace's "trace synthetic: N hosts" line never came
        assert err.startswith('watcher-failpredict: error: --out ')
        assert message in err and err.count('\n') == 1, err


@pytest.mark.skipif(os.geteuid() == 0, reason='root writes anywhere')
def test_out_in_a_read_only_directory_fails_first(tmp_path):
    locked = tmp_path / 'locked'
    locked.mkdir()
    locked.chmod(0o555)
    try:
        rc, _, err = run('train', *SMALL_TRACE, '--out',
                         str(locked / 'm.joblib'))
    finally:
        locked.chmod(0o755)
    assert rc == 2
    assert err.startswith(f'watcher-failpredict: error: --out {locked}/'
                          f'm.joblib: directory {locked} is not writable (')


def test_sigterm_during_the_save_leaves_no_temporary_file(tmp_path):
    """The named temporary file is forced (the unnamed one cannot be left
    behind at all) and the save held in its fsync; SIGTERM then.
    """
    prelude = textwrap.dedent('''
        import os, sys, time
        from watcher_failpredict import atomic
        atomic.open_unnamed = lambda directory: None
        def held_fsync(fd):
            sys.stderr.write('SAVING\\n')
            sys.stderr.flush()
            time.sleep(120)
        atomic.os.fsync = held_fsync
        ''')
    out = tmp_path / 'm.joblib'
    proc = spawn(console_script(prelude), 'train', *SMALL_TRACE,
                 '--model-kind', 'gbt', '--horizon', '10m', '--window', '30m',
                 '--out', str(out))
    try:
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if line == 'SAVING\n':
                break
        assert lines and lines[-1] == 'SAVING\n', ''.join(lines)
        # the named temporary file exists now: the case to clean up
        assert len(os.listdir(tmp_path)) == 1
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
        rest = proc.stderr.read()
    finally:
        proc.kill()
        proc.stdout.close()
        proc.stderr.close()
    assert rc == 143, rest
    assert rest == 'watcher-failpredict: terminated\n'
    assert os.listdir(tmp_path) == []


def test_ctrl_c_while_importing_prints_one_line():
    """SIGINT at start-up, while the imports run: Python's own SIGINT
    handler called when the import of scikit-learn begins, so it lands
    there every time. (It sent a real SIGINT with os.kill before, which
    Python handles when the main thread next checks for signals; in one
    CI run on a loaded machine the command then ran to its own error,
    status 2, as if the interrupt had landed somewhere that swallowed
    it.)
    """
    prelude = textwrap.dedent('''
        import importlib.abc, signal, sys

        class InterruptOnSklearn(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == 'sklearn':
                    sys.meta_path.remove(self)
                    signal.default_int_handler(signal.SIGINT, None)
                return None

        sys.meta_path.insert(0, InterruptOnSklearn())
        ''')
    proc = spawn(console_script(prelude), 'show-model', '/nonexistent')
    out, err = proc.communicate(timeout=120)
    assert (proc.returncode, out) == (130, '')
    assert err == 'watcher-failpredict: interrupted\n'


@pytest.mark.parametrize('option, value, message', [
    ('--chunk-deadline', '0', "'0' must be positive"),
    ('--chunk-deadline', '0.5', "'0.5' is less than the minimum 1 s"),
    ('--chunk-deadline', '-3', "'-3' is not a duration"),
    ('--chunk-deadline', '2h', "'2h' is 7200 s, more than the allowed "
                               "maximum 1h (3600 s)"),
    ('--deadline', '8d', "'8d' is 691200 s, more than the allowed maximum "
                         "1w (604800 s)"),
    ('--deadline', 'soon', "'soon' is not a duration"),
    ('--deadline', 'nan', "'nan' is not a duration"),
])
def test_deadlines_refused_by_argparse_naming_the_option(
        capsys, tmp_path, option, value, message):
    test_nonsense_values_refused_by_argparse_naming_the_option(
        capsys, tmp_path, option, value, message)


def test_deadline_defaults_and_bounds_are_accepted():
    from watcher_failpredict.cmd import train as train_cmd
    args = cli.build_parser().parse_args(
        ['train', '--influxdb', 'http://127.0.0.1:1', '--database', 'd',
         '--out', 'm.joblib'])
    assert (args.chunk_deadline, args.deadline) == (300, 4 * 3600)
    assert train_cmd.deadline_seconds(3600)('1') == 1
    assert train_cmd.deadline_seconds(3600)('1h') == 3600


def _timed_train(tmp_path, url, *options):
    t0 = time.monotonic()
    rc, stdout, err = run('train', '--influxdb', url, '--database', 'd',
                          '--out', str(tmp_path / 'm.joblib'), '--since',
                          '1h', '--chunk', '10m', *options)
    return rc, stdout, err, time.monotonic() - t0


def test_a_trickling_server_stops_train_at_the_chunk_deadline(tmp_path):
    server = faults.FaultServer('trickle')
    try:
        rc, stdout, err, elapsed = _timed_train(
            tmp_path, server.url, '--hosts', 'cmp-1', '--chunk-deadline',
            '2', '--timeout', '30')
    finally:
        server.stop()
    assert (rc, stdout) == (2, '')
    last = err.splitlines()[-1]
    assert last.startswith('watcher-failpredict: error: history chunk 1 of ')
    assert ('the per-chunk read deadline (--chunk-deadline) of 2 s passed'
            in last)
    assert last.endswith('; raise --chunk-deadline or --deadline, or read '
                         'less at once (--chunk, --since, --hosts)')
    assert 'Traceback' not in err
    assert elapsed < 2 + faults.MARGIN
    assert os.listdir(tmp_path) == []


def test_the_host_listing_is_bounded_too(tmp_path):
    server = faults.FaultServer('trickle')
    try:
        rc, stdout, err, elapsed = _timed_train(
            tmp_path, server.url, '--chunk-deadline', '2')
    finally:
        server.stop()
    assert rc == 2
    last = err.splitlines()[-1]
    assert last.startswith('watcher-failpredict: error: the read of the '
                           'compute_node names did not end in time: the '
                           'per-chunk read deadline (--chunk-deadline) of 2 '
                           's passed')
    assert elapsed < 2 + faults.MARGIN


def test_the_overall_deadline_stops_a_slow_read_between_chunks(tmp_path):
    server = faults.FaultServer('ok', delay=0.7)   # each chunk: 0.7 s
    try:
        rc, stdout, err, elapsed = _timed_train(
            tmp_path, server.url, '--hosts', 'cmp-1', '--deadline', '2')
    finally:
        server.stop()
    assert rc == 2
    last = err.splitlines()[-1]
    # 1 h of 10 min chunks: 2 chunks of 0.7 s fit in 2 s, 3 do not
    assert re.search(r'error: history chunk 3 of [67] ', last), last
    assert 'the overall read deadline (--deadline) of 2 s passed' in last
    assert 2 - 0.05 <= elapsed < 2 + faults.MARGIN
