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

"""The ``watcher-failpredict`` dispatcher: command registration, the
``report`` alias of ``compare-models``, and start-up kept light.
"""

import io
import os
import re
import subprocess
import sys
import types

import pytest

from watcher_failpredict.cmd import common
from watcher_failpredict.cmd import main as cli
from watcher_failpredict.prediction import bundle as bundle_mod

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
SMALL_TRACE = ['--trace', 'synthetic', '--trace-opt', 'n_hosts=5',
               '--trace-opt', 'days=0.4']
ALIAS_WARNING = ("watcher-failpredict: warning: 'report' is deprecated and "
                 "will be removed; use 'compare-models' (same options)\n")


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main(list(argv), stdout=out, stderr=err)
    return rc, out.getvalue(), err.getvalue()


def listed_commands(capsys):
    """The command names ``--help`` lists, in its order, aliases
    in brackets.
    """
    with pytest.raises(SystemExit) as exc:
        cli.main(['--help'])
    assert exc.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    return [m.group(1) for m in map(re.compile(
        r'^ {4}([a-z][a-z-]*(?: \([a-z, -]+\))?)(?:  |$)').match, lines) if m]


def greet_command():
    """A command module as a plugin author would write one."""
    calls = []

    def add_parser(subparsers):
        p = subparsers.add_parser('greet', aliases=['hello'],
                                  help='say hello')
        p.add_argument('--name', required=True)

    def run(args, stdout, stderr):
        calls.append(args)
        if args.name == 'nobody':
            raise common.CommandError('--name nobody: nobody to greet')
        if args.name == 'both':
            raise common.UsageError('greet: --name both needs two names')
        stdout.write(f'hello {args.name}\n')
        stderr.write('greeted\n')
        return 3

    module = types.ModuleType('greet')
    module.add_parser, module.run = add_parser, run
    return module, calls


def test_commands_are_the_listed_modules_in_order(capsys):
    assert listed_commands(capsys) == ['train', 'compare-models (report)',
                                       'show-model', 'evaluate', 'traces']
    assert [m.__name__.rpartition('.')[2] for m in cli.COMMANDS] == [
        'train', 'compare_models', 'show_model', 'evaluate', 'traces']
    for module in cli.COMMANDS:
        assert callable(module.add_parser) and callable(module.run)


def test_adding_a_command_is_one_entry_in_commands(monkeypatch, capsys):
    greet, calls = greet_command()
    monkeypatch.setattr(cli, 'COMMANDS', cli.COMMANDS + (greet,))
    rc, out, err = run('greet', '--name', 'Ada')
    assert (rc, out, err) == (3, 'hello Ada\n', 'greeted\n')
    # an alias it declares runs the same run()
    rc, out, err = run('hello', '--name', 'Bob')
    assert (rc, out) == (3, 'hello Bob\n')
    assert [(a.command, a.name) for a in calls] == [
        ('greet', 'Ada'), ('hello', 'Bob')]
    # its errors get the same treatment as the built-in commands'
    rc, out, err = run('greet', '--name', 'nobody')
    assert (rc, out) == (2, '')
    assert err == ('watcher-failpredict: error: --name nobody: nobody to '
                   'greet\n')
    with pytest.raises(SystemExit) as exc:
        run('greet', '--name', 'both')
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith('usage: watcher-failpredict [-h] COMMAND')
    assert err.endswith('watcher-failpredict: error: greet: --name both '
                        'needs two names\n')
    # and --help lists it after the others
    assert listed_commands(capsys) == ['train', 'compare-models (report)',
                                       'show-model', 'evaluate', 'traces',
                                       'greet (hello)']
    # the built-in commands still dispatch to their own modules
    assert run('show-model', '/nonexistent/m.joblib')[0] == 2


def test_help_names_what_each_command_runs(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(['--help'])
    assert exc.value.code == 0
    text = ' '.join(capsys.readouterr().out.split())
    assert 'compare-models (report) compare a model bundle with other ' \
           'model kinds and the baselines on held-out trace data' in text
    assert "report: its deprecated old name" in text
    assert 'evaluate evaluate migration policies in the simulated NFV ' \
           'testbed' in text


@pytest.fixture(scope='module')
def small_bundle(tmp_path_factory):
    path = tmp_path_factory.mktemp('bundle') / 'm.joblib'
    rc, out, err = run('train', *SMALL_TRACE, '--model-kind', 'gbt',
                       '--horizon', '10m', '--window', '30m', '--cycle', '1h',
                       '--out', str(path))
    assert rc == 0, err
    return path


def test_report_alias_warns_then_does_what_compare_models_does(small_bundle):
    argv = ['--bundle', str(small_bundle), *SMALL_TRACE, '--sha256',
            bundle_mod.file_sha256(small_bundle)]
    rc_new, out_new, err_new = run('compare-models', *argv)
    rc_old, out_old, err_old = run('report', *argv)
    assert rc_new == rc_old == 0
    assert 'bundle' in out_new and 'least_cpu_now' in out_new
    assert 'deprecated' not in err_new
    # the same report, and the same progress lines after one warning
    assert out_old == out_new
    assert err_old == ALIAS_WARNING + err_new


def test_report_alias_warns_before_its_errors():
    rc, out, err = run('report', '--bundle', '/nonexistent/m.joblib')
    assert (rc, out) == (2, '')
    assert err == (ALIAS_WARNING + 'watcher-failpredict: error: '
                   'compare-models needs --trace NAME (the data to score '
                   'the bundle on)\n')
    rc, out, err = run('compare-models', '--bundle', '/nonexistent/m.joblib')
    assert rc == 2
    assert err == ('watcher-failpredict: error: compare-models needs '
                   '--trace NAME (the data to score the bundle on)\n')


def test_help_does_not_load_the_testbed_runner():
    """evaluate imports the testbed's policies and runner lazily because
    they load Watcher's strategy machinery and doubled the start-up of
    every command; this keeps it that way.
    """
    code = ('import sys\n'
            'from watcher_failpredict.cmd import main\n'
            'main.build_parser()\n'
            'print(sorted(m for m in sys.modules if m in (\n'
            '    "watcher_failpredict.testbed.runner",\n'
            '    "watcher_failpredict.testbed.policies",\n'
            '    "watcher_failpredict.strategies.predicted_least_failure",\n'
            '    "watcher_failpredict.cmd.evaluate")))\n')
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable, '-W', 'ignore', '-c', code],
                          cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['watcher_failpredict.cmd.evaluate']"
