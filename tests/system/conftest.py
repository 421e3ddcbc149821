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

"""The system tests' marker: ``pytest -m 'not system'`` leaves them out.

They run by default (``tools/run-tests`` runs ``pytest tests``); each brings
the one-machine stack (``tools/stack``) up itself and down at the end.
"""


def pytest_configure(config):
    config.addinivalue_line(
        'markers', 'system: brings up the real multi-process stack '
                   '(tools/stack); minutes, not seconds')
