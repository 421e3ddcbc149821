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

"""From a fresh clone, with no traces anywhere, the CLI runs the azure
scenario and lists the trace sets, and reads nothing outside the clone.

The repository's committed HEAD is cloned into an empty temporary folder;
``FAILPREDICT_TRACES`` is unset and ``XDG_CACHE_HOME`` / ``HOME`` point at
empty temporary folders. The CLI runs with this test's Python (its
dependencies) and ``PYTHONPATH=<clone>``, under an audit hook that logs
every file the process opens or lists: none may be in the checkout the
test runs from, nor in any ``shared/traces``, and every trace file read
must come from the clone. Only the interpreter's own environment (which
tools/run-tests creates inside the checkout, as .venv) may be read from
the checkout.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))

pytestmark = pytest.mark.skipif(
    shutil.which('git') is None or not os.path.exists(
        os.path.join(REPO, '.git')),
    reason='needs git and a git checkout to clone')

# Runs the CLI as the console script would, logging file accesses.
AUDITED_CLI = textwrap.dedent('''
    import os, runpy, sys
    log = open(os.environ['FRESH_CLONE_LOG'], 'w', buffering=1)
    def hook(event, args):
        if event in ('open', 'os.listdir', 'os.scandir') and args and \\
                isinstance(args[0], (str, bytes, os.PathLike)):
            log.write(os.path.abspath(os.fsdecode(args[0])) + '\\n')
    sys.addaudithook(hook)
    import watcher_failpredict
    log.write('PACKAGE ' + watcher_failpredict.__file__ + '\\n')
    sys.argv = ['watcher-failpredict'] + sys.argv[1:]
    runpy.run_module('watcher_failpredict.cmd.main', run_name='__main__',
                     alter_sys=True)
''')


@pytest.fixture(scope='module')
def clone(tmp_path_factory):
    base = tmp_path_factory.mktemp('fresh')
    target = base / 'watcher-failpredict'
    subprocess.run(['git', 'clone', '--quiet', '--no-hardlinks', REPO,
                    str(target)], check=True, timeout=120)
    for folder in ('cache', 'home', 'out'):
        (base / folder).mkdir()
    (base / 'cli.py').write_text(AUDITED_CLI)
    return base


def _run(base, *argv):
    env = {k: v for k, v in os.environ.items()
           if k not in ('FAILPREDICT_TRACES', 'PYTHONPATH')}
    env.update(XDG_CACHE_HOME=str(base / 'cache'), HOME=str(base / 'home'),
               PYTHONPATH=str(base / 'watcher-failpredict'),
               FRESH_CLONE_LOG=str(base / f'{argv[0]}.log'))
    proc = subprocess.run([sys.executable, str(base / 'cli.py'), *argv],
                          cwd=str(base / 'watcher-failpredict'), env=env,
                          capture_output=True, text=True, timeout=300)
    with open(base / f'{argv[0]}.log', encoding='utf-8') as f:
        accessed = f.read().splitlines()
    return proc, accessed


def _check_accesses(base, accessed):
    clone = str(base / 'watcher-failpredict')
    package = [a for a in accessed if a.startswith('PACKAGE ')]
    assert package == [f'PACKAGE {clone}/watcher_failpredict/__init__.py']
    # the Python environment may live in the checkout (tools/run-tests
    # makes .venv there): reading the interpreter's own files is fine
    python_env = tuple(os.path.join(p, '') for p in {
        sys.prefix, sys.exec_prefix, os.path.realpath(sys.prefix)})
    outside = [a for a in accessed
               if (a == REPO or a.startswith(REPO + os.sep)) and
               not a.startswith(python_env)]
    assert outside == [], f'read from the checkout: {outside[:5]}'
    assert not [a for a in accessed if 'shared/traces' in a]
    trace_files = [a for a in accessed if a.endswith(
        ('.csv', '.csv.bz2', '.csv.gz'))]
    assert all(a.startswith(clone + os.sep) for a in trace_files), \
        trace_files


def test_traces_list_from_a_fresh_clone(clone):
    proc, accessed = _run(clone, 'traces', 'list')
    assert proc.returncode == 0, proc.stderr
    cache = clone / 'cache' / 'watcher-failpredict' / 'traces'
    shipped = (clone / 'watcher-failpredict' / 'watcher_failpredict' /
               'tracesets' / 'data' / 'azure_v1_vms')
    assert proc.stdout.startswith(f'traces directory: {cache} (from the '
                                  f'user cache')
    assert f'azure: shipped ({shipped})' in proc.stdout
    assert f'alibaba: missing ({cache}/alibaba2018_machines)' in proc.stdout
    assert f'bitbrains: missing ({cache}/bitbrains_rnd)' in proc.stdout
    assert 'fetch it with: watcher-failpredict traces fetch alibaba' in \
        proc.stdout
    _check_accesses(clone, accessed)
    assert not os.path.exists(cache)        # listing creates nothing


def test_evaluate_azure_from_a_fresh_clone(clone):
    out = clone / 'out' / 'azure.json'
    proc, accessed = _run(clone, 'evaluate', '--scenario', 'azure',
                          '--seeds', '1', '--policies', 'no-mig,proposed',
                          '--json', str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line.split()[0] for line in proc.stdout.splitlines()
            if line.startswith(('no-mig ', 'proposed '))]
    assert rows == ['no-mig', 'proposed']
    with open(out, encoding='utf-8') as f:
        doc = json.load(f)
    assert sorted(doc['results']) == ['no-mig', 'proposed']
    trace_file = doc['scenario']['servers']['background'][0]['file']
    assert trace_file == str(
        clone / 'watcher-failpredict' / 'watcher_failpredict' / 'tracesets' /
        'data' / 'azure_v1_vms' / 'cpu_avg_5min.csv.bz2')
    assert trace_file in accessed
    _check_accesses(clone, accessed)
