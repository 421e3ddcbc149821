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

"""The datasource ``[failpredict] datasource`` names.

``influxdb`` (collectd in InfluxDB 1.x), ``prometheus`` (node_exporter
and the libvirt exporter in Prometheus) or ``aetos`` (the same through
Aetos, with a token of Watcher's Keystone session). Both are
:class:`~watcher_failpredict.datasources.base.WindowsDataSource` and give
the strategy the same bulk interface (``cluster_windows``,
``cluster_means``, ``collectd_host``, ``instance_cpu_per_vcpu``, ``close``)
in the same units; each backend is imported only when chosen.
"""

from watcher_failpredict.conf import CONF

BACKENDS = ('influxdb', 'prometheus', 'aetos')


def datasource(name=None, session=None, **kwargs):
    """A new datasource of backend ``name`` (default: the option's).

    :param session: ``callable() -> keystoneauth1 session``, for aetos
        (the strategy passes Watcher's ``OpenStackClients().session``)
    :param kwargs: given to the backend's constructor (overriding its
        options)
    :raises ValueError: on an unknown backend
    """
    name = CONF.failpredict.datasource if name is None else name
    if name == 'influxdb':
        from watcher_failpredict.datasources import influxdb
        return influxdb.InfluxDBDataSource(**kwargs)
    if name == 'prometheus':
        from watcher_failpredict.datasources import prometheus
        return prometheus.PrometheusDataSource(**kwargs)
    if name == 'aetos':
        from watcher_failpredict.datasources.prometheus import aetos
        if session is None:
            raise ValueError('datasource aetos needs a Keystone session')
        return aetos.AetosDataSource(session(), **kwargs)
    raise ValueError(f'unknown datasource {name!r}; expected one of '
                     f'{BACKENDS}')
