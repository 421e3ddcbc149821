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

"""The InfluxQL of a read (datasources/influxdb/query.py)."""

import pytest

from watcher_failpredict.datasources import influxdb as idb
from watcher_failpredict.datasources.influxdb import query


def test_balanced_groups():
    # cpu, memory, load (gauges) and disk, net (counters, twice the rows).
    assert query.balanced_groups([1, 1, 1, 2, 2], 2) == [[0, 2, 3], [1, 4]]
    assert query.balanced_groups([2, 1], 2) == [[0], [1]]
    assert query.balanced_groups([1], 3) == [[0]]
    assert query.balanced_groups([1, 1, 1, 2, 2], 1) == [[0, 1, 2, 3, 4]]
    groups = query.balanced_groups([5, 1, 1, 1, 1, 1], 3)
    assert sorted(i for g in groups for i in g) == list(range(6))
    assert groups[0] == [0]
    for bad in (0, 1.5, True, '2'):
        with pytest.raises(ValueError, match='query_split'):
            idb.InfluxDBDataSource(url='http://127.0.0.1:1', query_split=bad)


def test_names_are_bind_parameters_and_modes_differ_in_grouping():
    names = ('a', "b' OR 1=1")
    raw = query.QueryBuilder(600, 1200, 60, names, raw=True, interval=10)
    text, is_counter = raw.gauge('load_shortterm', None, None)
    assert not is_counter
    assert raw.bind_params == {'h0': 'a', 'h1': "b' OR 1=1"}
    assert '("host" = $h0 OR "host" = $h1)' in text
    assert "OR 1=1" not in text
    assert text.startswith('SELECT "value" FROM "load_shortterm" WHERE ')
    assert text.endswith('time >= 600s AND time < 1200s AND ("host" = $h0 '
                         'OR "host" = $h1) GROUP BY "host"')
    server = query.QueryBuilder(600, 1200, 60, None, raw=False)
    text, _ = server.gauge('load_shortterm', None, None)
    assert server.bind_params == {}
    assert text == ('SELECT mean("value") FROM "load_shortterm" WHERE '
                    'time >= 600s AND time < 1200s GROUP BY time(60s, 0s), '
                    '"host" fill(none)')
    # A server-mode counter: the full range plus the newest bucket per
    # measurement; raw mode reads the counter once, from a lookback.
    disk = query.HOST_COUNTERS['disk']
    assert len(server.counter_statements(*disk)) == 3
    (raw_disk,) = raw.counter_statements(*disk)
    assert raw_disk[1] and 'time >= 540s' in raw_disk[0]
    assert query.regex_of(['a.b', 'c']) == r'/^(a\.b|c)$/'
