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

"""The source tree as a whole: licence headers, flake8 with hacking, and the
unit tests' layout mirroring the package's.
"""

import pathlib
import subprocess
import sys

import watcher_failpredict

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = pathlib.Path(watcher_failpredict.__file__).resolve().parent

APACHE_HEADER = '''\
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
'''

#: Shell scripts of ours (the rest of the sources are the *.py files).
SCRIPTS = ('.ci/run', 'tools/run-tests', 'tools/stack',
           'devstack/plugin.sh', 'devstack/settings')


def source_files():
    """Every tracked Python file and our shell scripts, relative to ROOT."""
    listed = subprocess.run(['git', 'ls-files', '*.py'], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    return sorted(listed.stdout.split()) + list(SCRIPTS)


def licence_problem(text):
    """Why ``text`` lacks the header, or None. Empty files (package markers)
    need none: hacking's H104 refuses a file of comments only.
    """
    if not text.strip():
        return None
    body = text.split('\n', 1)[1] if text.startswith('#!') else text
    if not body.startswith(APACHE_HEADER):
        return 'no Apache 2.0 header at the top'
    return None


def test_licence_problem_is_found_and_placed_right():
    assert licence_problem('') is None
    assert licence_problem(APACHE_HEADER + '\nimport os\n') is None
    assert licence_problem('#!/bin/sh\n' + APACHE_HEADER + 'x\n') is None
    assert licence_problem('"""doc"""\n' + APACHE_HEADER) is not None
    assert licence_problem(APACHE_HEADER.replace('2.0', '3.0')) is not None


def test_every_source_file_carries_the_apache_header():
    missing = [f'{path}: {why}' for path in source_files()
               for why in [licence_problem((ROOT / path).read_text())]
               if why]
    assert not missing, '\n'.join(missing)


def test_flake8_with_hacking_is_clean():
    """The checks tox -e pep8 runs (tox.ini [flake8]), on the whole tree."""
    run = subprocess.run([sys.executable, '-m', 'flake8'], cwd=ROOT,
                         capture_output=True, text=True)
    assert 'hacking' in subprocess.run(
        [sys.executable, '-m', 'flake8', '--version'], capture_output=True,
        text=True).stdout, 'flake8 runs without the hacking plugin'
    assert run.returncode == 0, run.stdout + run.stderr


def test_unit_tests_mirror_the_package_folders():
    """tests/unit/<folder>/ for each folder of the package, and no test
    left flat beside them that names one of those folders.
    """
    packages = sorted(p.name for p in PACKAGE.iterdir()
                      if (p / '__init__.py').exists())
    unit = ROOT / 'tests' / 'unit'
    folders = sorted(p.name for p in unit.iterdir()
                     if (p / '__init__.py').exists())
    assert folders == packages
    misplaced = [p.name for p in unit.glob('test_*.py')
                 if p.name[len('test_'):-len('.py')].split('_')[0]
                 in packages]
    assert not misplaced, misplaced
