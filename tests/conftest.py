"""pytest fixtures shared by the test suite.

``influxdb_server`` starts one real ``influxd`` per test session (see
:mod:`tests.influxdb_server`); ``influxdb_db`` gives each test its own fresh
database on it, so tests never see each other's points.
"""

import itertools

import pytest

from tests.influxdb_server import InfluxDBServer

_db_counter = itertools.count()


@pytest.fixture(scope='session')
def influxdb_server():
    """A real InfluxDB 1.x server on 127.0.0.1, for the whole session."""
    server = InfluxDBServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def influxdb_db(influxdb_server):
    """The name of a database created for this test only."""
    name = f'test_{next(_db_counter)}'
    influxdb_server.create_database(name)
    yield name
    influxdb_server.query(f'DROP DATABASE "{name}"')
