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

"""The Sphinx documentation builds without warnings and covers what it must.

``tox -e docs`` runs ``sphinx-build -W``; this test runs the same build
(sphinx and reno are in test-requirements.txt), so a broken reference, a
page left out of the toctree or a malformed release note fails the tests.
"""

import html as html_lib
import os
import re
import subprocess
import sys

import pytest

from watcher_failpredict import conf as fp_conf

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
SOURCE = os.path.join(ROOT, 'doc', 'source')

PAGES = ('install', 'devstack', 'configuration', 'training', 'strategy',
         'operations', 'troubleshooting', 'limitations', 'releasenotes')


@pytest.fixture(scope='module')
def html(tmp_path_factory):
    pytest.importorskip('sphinx')
    pytest.importorskip('reno')
    out = tmp_path_factory.mktemp('docs')
    proc = subprocess.run(
        [sys.executable, '-m', 'sphinx', '-W', '--keep-going', '-q', '-b',
         'html', SOURCE, str(out)], capture_output=True, text=True,
        cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def _text(html, page):
    with open(html / f'{page}.html', encoding='utf-8') as f:
        text = re.sub(r'<[^>]+>', '', f.read())
    return re.sub(r'\s+', ' ', html_lib.unescape(text))


def test_tox_docs_env_treats_warnings_as_errors():
    with open(os.path.join(ROOT, 'tox.ini')) as f:
        tox = f.read()
    section = tox.split('[testenv:docs]', 1)[1].split('\n[', 1)[0]
    assert 'sphinx-build -W' in section
    assert 'doc/requirements.txt' in section
    with open(os.path.join(ROOT, 'doc', 'requirements.txt')) as f:
        reqs = f.read()
    assert re.search(r'^sphinx\b', reqs, re.M)
    assert re.search(r'^reno\b', reqs, re.M)


def test_every_page_is_built(html):
    for page in PAGES:
        assert (html / f'{page}.html').exists(), page


def test_topics_are_covered(html):
    want = {
        'install': ['pip install', 'enable_plugin', 'scoringengine list'],
        'devstack': ['enable_plugin watcher-failpredict', 'local.conf',
                     'FAILPREDICT_INFLUXDB_HOST'],
        'operations': ['cron', 'model_sha256', 'CONTINUOUS', 'EVENT',
                       'webhooks', 'cluster_risk_after', 'record_risk',
                       'failpredict_risk'],
        'troubleshooting': ['Missing metrics', 'Model errors',
                            'InfluxDB down', 'host_name_map'],
        'limitations': ['Planned by default', 'pickles'],
    }
    for page, words in want.items():
        text = _text(html, page)
        for word in words:
            assert word in text, (page, word)


def test_every_option_is_documented(html):
    text = _text(html, 'configuration') + ''.join(
        _text(html, p) for p in PAGES)
    ((_group, opts),) = fp_conf.list_opts()
    missing = [o.name for o in opts if o.name not in text]
    assert not missing


def test_release_notes_are_rendered(html):
    notes = os.listdir(os.path.join(ROOT, 'releasenotes', 'notes'))
    assert notes and all(n.endswith('.yaml') for n in notes)
    text = _text(html, 'releasenotes')
    assert 'failure_mitigation' in text and 'record_risk' in text
