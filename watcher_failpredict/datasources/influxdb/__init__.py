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
