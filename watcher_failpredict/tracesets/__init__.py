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

"""Real utilisation trace sets: where they live, what they are, and how the
project fetches and converts them (``watcher-failpredict traces``).

* :mod:`.location`: the one traces directory (``--traces DIR``, else
  ``$FAILPREDICT_TRACES``, else the user's cache) and the files shipped
  with the package;
* :mod:`.catalog`: each public set, its licence, citation and the
  publisher's files (pinned by sha256 where the publisher gives one);
* :mod:`.download`: resumable, verified HTTP downloads;
* :mod:`.convert`: the publishers' formats to the layout the loaders read;
* :mod:`.fetch`: download, verify, convert and install one set.
"""
