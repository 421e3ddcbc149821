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

"""End-to-end tests through python-watcher's own functional harness.

Watcher's harness selects the oslo.service threading backend when
``watcher.tests.functional`` is imported; if anything imports oslo.service
first (Watcher's strategies base does, and so do our strategies), the
backend is already chosen and the harness dies with BackendAlreadySelected.
So this package imports it before anything else.
"""

import watcher.tests.functional  # noqa: F401  (must stay the first import)
