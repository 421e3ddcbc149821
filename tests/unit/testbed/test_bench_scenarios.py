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

"""bench/scenarios: the files doc/source/testbed.rst's figures beyond the
built-ins were measured on load, are listed, and say what they claim.
"""

import pathlib
import re

import numpy as np
import pytest

from watcher_failpredict.testbed import cluster
from watcher_failpredict.testbed import scenario

FOLDER = pathlib.Path(__file__).resolve().parents[3] / 'bench' / 'scenarios'
FILES = sorted(FOLDER.glob('*.yaml'))
#: trace sets the package does not ship (research use only)
RESEARCH_ONLY = ('alibaba2018_machines', 'bitbrains_rnd')


def test_every_file_is_in_the_readme_table_and_no_other():
    table = re.findall(r'^\| `([\w-]+\.yaml)` \|',
                       (FOLDER / 'README.md').read_text(), re.M)
    assert len(FILES) >= 12
    assert sorted(table) == [f.name for f in FILES]


@pytest.mark.parametrize('path', FILES, ids=lambda p: p.stem)
def test_each_file_loads_or_names_the_set_to_fetch(path, tmp_path):
    """With an empty traces directory (what CI's bare clone has), a file on
    synthetic load or the shipped Azure set loads, named as its file; one
    on a research-only set is refused with the fetch command.
    """
    text = path.read_text()
    needs = [s for s in RESEARCH_ONLY if f'traces:{s}/' in text]
    if needs:
        with pytest.raises(scenario.ScenarioError,
                           match='watcher-failpredict traces fetch'):
            scenario.load(str(path), traces=str(tmp_path))
        return
    scn = scenario.load(str(path), traces=str(tmp_path))
    assert scn['name'] == path.stem
    assert len(scn['servers']['background']) == scn['servers']['count']
    assert scn['train_duration'] > 0 and scn['test_duration'] > 0


def test_azure_peaks_has_azures_level_over_the_training_days(tmp_path):
    """Its header's rule: the 5-minute maxima x0.52 load the servers as
    much, on average over the training stretch, as azure's means do; the
    maxima are burstier (a larger spread over time).
    """
    peaks = cluster.Testbed(scenario.load(
        str(FOLDER / 'azure-peaks.yaml'), traces=str(tmp_path)), 1, 'train')
    means = cluster.Testbed(scenario.load('azure', traces=str(tmp_path)), 1,
                            'train')
    assert peaks.bg.shape == means.bg.shape
    assert peaks.bg.mean() == pytest.approx(means.bg.mean(), rel=0.03)
    assert not np.allclose(peaks.bg, means.bg)


def test_paper16_drift_is_sixteen_eight_core_servers_drifting(tmp_path):
    scn = scenario.load(str(FOLDER / 'paper16-drift.yaml'),
                        traces=str(tmp_path))
    assert (scn['servers']['count'], scn['servers']['cores'],
            scn['chains']['count']) == (16, 8, 16)
    assert scn['drift'] == {'period_scale': 0.9, 'phase_shift': 900,
                            'scale': 1.05, 'offset': 0.0}
