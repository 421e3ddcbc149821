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

"""Atomic writes (watcher_failpredict.atomic) and the reports that use them."""

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap

import pytest

from watcher_failpredict import atomic
from watcher_failpredict.prediction import evaluation
from watcher_failpredict.testbed import report


REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


@pytest.fixture(params=['unnamed', 'named'])
def temporary_kind(request, tmp_path, monkeypatch):
    """Both ways atomic_open makes its temporary file: O_TMPFILE (skipped
    where the file system has none) and the mkstemp fallback.
    """
    if request.param == 'named':
        monkeypatch.setattr(atomic, 'open_unnamed', lambda directory: None)
    else:
        fd = atomic.open_unnamed(str(tmp_path))
        if fd is None:
            pytest.skip('no O_TMPFILE here')
        os.close(fd)
    return request.param


def test_atomic_open_replaces_the_file_with_readable_permissions(
        tmp_path, temporary_kind):
    path = tmp_path / 'out.txt'
    path.write_text('old')
    with atomic.atomic_open(path) as f:
        f.write('new')
        # not visible under the final name before the block ends
        assert path.read_text() == 'old'
        during = sorted(os.listdir(tmp_path))
    assert path.read_text() == 'new'
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert sorted(os.listdir(tmp_path)) == ['out.txt']
    if temporary_kind == 'unnamed':
        assert during == ['out.txt']      # nothing to leave behind
    else:
        assert len(during) == 2 and during[0].startswith('.out.txt.')


def test_atomic_open_error_keeps_the_old_file_and_no_temporary(
        tmp_path, temporary_kind):
    path = tmp_path / 'out.bin'
    path.write_bytes(b'old')
    with pytest.raises(RuntimeError, match='disk on fire'):
        with atomic.atomic_open(path, 'wb') as f:
            f.write(b'half')
            raise RuntimeError('disk on fire')
    assert path.read_bytes() == b'old'
    assert sorted(os.listdir(tmp_path)) == ['out.bin']
    with pytest.raises(ValueError, match="mode must be w or wb, got 'a'"):
        with atomic.atomic_open(path, 'a'):
            pass


def test_sigkill_mid_write_leaves_no_temporary_file(tmp_path):
    """Issue 14.9: a train killed while saving left a 1.26 MB temporary
    file. The unnamed temporary file cannot be left behind.
    """
    if atomic.open_unnamed(str(tmp_path)) is None:
        pytest.skip('no O_TMPFILE here')
    path = tmp_path / 'model.joblib'
    path.write_bytes(b'old')
    code = textwrap.dedent(f'''
        import sys, time
        from watcher_failpredict import atomic
        with atomic.atomic_open({str(path)!r}, 'wb') as f:
            f.write(b'x' * 1_300_000)
            f.flush()
            print('writing', flush=True)
            time.sleep(60)
        ''')
    proc = subprocess.Popen([sys.executable, '-c', code], cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=REPO),
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == 'writing\n'
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.stdout.close()
    assert sorted(os.listdir(tmp_path)) == ['model.joblib']
    assert path.read_bytes() == b'old'


def test_write_text_returns_the_path(tmp_path):
    path = str(tmp_path / 'a.txt')
    assert atomic.write_text(path, 'héllo\n') == path
    with open(path, encoding='utf-8') as f:
        assert f.read() == 'héllo\n'


def test_prediction_report_json_is_written_atomically(tmp_path):
    path = tmp_path / 'report.json'
    path.write_text('{"previous": true}')
    with pytest.raises(TypeError):
        evaluation.write_json({'name': 'x', 'bad': object()}, str(path))
    assert json.loads(path.read_text()) == {'previous': True}
    assert sorted(os.listdir(tmp_path)) == ['report.json']
    evaluation.write_json({'name': 'x', 'n': 3, '_arrays': {'y': [1]}},
                          str(path))
    assert json.loads(path.read_text()) == {'name': 'x', 'n': 3}


def test_testbed_json_is_written_atomically(tmp_path, monkeypatch):
    # the smallest scenario the report reads (its chains give the SLO)
    scn = {'name': 's', 'chains': {'hops': [{'name': 'fw', 'cost': 0.002}],
                                   'vcpus': 1, 'link_latency': 0.0005}}
    path = tmp_path / 'paper.json'
    path.write_text('{"previous": true}')

    def broken_dump(doc, f, **kwargs):
        f.write('{"half": ')
        raise OSError('no space left on device')

    monkeypatch.setattr(report.json, 'dump', broken_dump)
    with pytest.raises(OSError, match='no space'):
        report.write_json(str(path), scn, {}, {}, [])
    assert json.loads(path.read_text()) == {'previous': True}
    monkeypatch.undo()
    report.write_json(str(path), scn, {'no-mig': {}}, {}, [], 'validation')
    doc = json.loads(path.read_text())
    assert doc['stretch'] == 'validation' and doc['scenario'] == scn
    assert sorted(os.listdir(tmp_path)) == ['paper.json']
