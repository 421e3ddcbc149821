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

"""The Prometheus backend: node_exporter and libvirt exporter metrics.

* :mod:`.client`: the one Prometheus HTTP API client of the tree;
* :mod:`.query`: the PromQL of a read (and the exporter metrics mapped);
* :mod:`.decode`: answers into per-name series;
* :mod:`.datasource`: :class:`PrometheusDataSource`, the Watcher
  datasource built on the three (``[failpredict] datasource =
  prometheus``);
* :mod:`.local_server`: a throwaway loopback Prometheus for tests.
"""

from watcher_failpredict.datasources.prometheus.datasource import (
    PrometheusDataSource)
from watcher_failpredict.datasources.prometheus.datasource import NAME

__all__ = ['NAME', 'PrometheusDataSource']
