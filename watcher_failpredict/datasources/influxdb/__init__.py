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

"""The InfluxDB 1.x backend: collectd metrics written by InfluxDB's input.

* :mod:`.client`: the one InfluxDB HTTP client of the tree;
* :mod:`.query`: the InfluxQL of a read;
* :mod:`.decode`: answers into per-host series;
* :mod:`.datasource`: :class:`InfluxDBDataSource`, the Watcher datasource
  built on the three (configured as
  ``watcher_failpredict.datasources.influxdb.InfluxDBDataSource``);
* :mod:`.local_server`: a throwaway loopback influxd for tests, benchmarks
  and the testbed.
"""

from watcher_failpredict.datasources.influxdb.client import InfluxDBQueryError
from watcher_failpredict.datasources.influxdb.datasource import (
    InfluxDBDataSource)
from watcher_failpredict.datasources.influxdb.datasource import NAME

__all__ = ['InfluxDBDataSource', 'InfluxDBQueryError', 'NAME']
