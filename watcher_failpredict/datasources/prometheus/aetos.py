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

"""The Prometheus datasource reached through Aetos.

Aetos is the Keystone-authenticated, multi-tenant proxy that Watcher (from
2026.1) puts in front of Prometheus: the same ``/api/v1`` API, each request
carrying an ``X-Auth-Token``. :class:`AetosDataSource` is the
:class:`~.datasource.PrometheusDataSource` (same queries, same windows,
same request count) whose client

* finds its URL in the Keystone catalogue (service type
  ``metric-storage``, with the interface and region of Watcher's own
  ``[aetos_client]`` options), unless ``[failpredict] aetos_endpoint``
  names it;
* sends instant queries only, as GET: Aetos 3.0.0 serves
  ``/api/v1/query`` by GET and nothing else (``query_range`` answers 404,
  a POST 405), so the windows come from subqueries evaluated at multiples
  of the step, their selectors shifted to the windows' ends
  (:meth:`.query.QueryBuilder.subquery`), still one request per metric;
* asks the keystoneauth session for its authentication headers before
  every request (``session.get_auth_headers()``: keystoneauth caches the
  token and renews it when it expires), never logging them.

The session is Watcher's (``OpenStackClients().session``, from the
``[watcher_clients_auth]`` / ``keystone_authtoken`` options Watcher
already has), which the strategy passes in.
"""

from watcher_failpredict.conf import CONF
from watcher_failpredict.datasources.prometheus import datasource
from watcher_failpredict.datasources import windows as metric_windows

NAME = 'failpredict_aetos'
SERVICE_TYPE = 'metric-storage'


def _watcher_option(name, default):
    """Watcher's ``[aetos_client]`` option, if Watcher registered it."""
    try:
        return getattr(CONF.aetos_client, name)
    except Exception:   # no such group/option: Watcher not loaded
        return default


def find_endpoint(session, explicit=None, interface=None, region_name=None):
    """Aetos' base URL: ``explicit``, else the catalogue's.

    :raises MetricsUnavailable: the catalogue has no ``metric-storage``
        endpoint for that interface and region (or cannot be read)
    """
    if explicit:
        return explicit
    interface = interface or _watcher_option('interface', 'public')
    region_name = region_name or _watcher_option('region_name', None)
    try:
        url = session.get_endpoint(service_type=SERVICE_TYPE,
                                   interface=interface,
                                   region_name=region_name)
    except Exception as exc:  # keystoneauth's many failures
        raise metric_windows.MetricsUnavailable(
            f'cannot find Aetos ({SERVICE_TYPE}) in the Keystone '
            f'catalogue: {type(exc).__name__}: {exc}') from None
    if not url:
        raise metric_windows.MetricsUnavailable(
            f'the Keystone catalogue has no {SERVICE_TYPE} endpoint '
            f'(interface {interface!r}, region {region_name!r}); register '
            f'Aetos or set [failpredict] aetos_endpoint')
    return url


class AetosDataSource(datasource.PrometheusDataSource):
    """PrometheusDataSource through Aetos with a Keystone session.

    :param session: a keystoneauth1 session (Watcher's)
    :param endpoint: Aetos' base URL (default: ``[failpredict]
        aetos_endpoint``, else the catalogue's)
    :param kwargs: as PrometheusDataSource (host label, timeouts, ...)
    """

    NAME = NAME

    def __init__(self, session, endpoint=None, interface=None,
                 region_name=None, **kwargs):
        explicit = (CONF.failpredict.aetos_endpoint if endpoint is None
                    else endpoint)
        url = find_endpoint(session, explicit, interface, region_name)
        kwargs.setdefault('instant_only', True)
        super().__init__(url=url, auth_headers=session.get_auth_headers,
                         **kwargs)
