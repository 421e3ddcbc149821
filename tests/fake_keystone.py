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

"""A minimal Keystone v3 identity endpoint on 127.0.0.1, for tests.

It knows one user (name, password, project, all in the ``Default``
domain) and one catalogue; ``POST /v3/auth/tokens`` with that user's
password issues :attr:`FakeKeystone.token` (any other login: 401), and
``GET /v3/auth/tokens`` answers for that token only (what a token
validator such as keystonemiddleware asks). Every login attempt is
recorded in :attr:`FakeKeystone.logins` as ``(user, password)``.
"""

import json
import socketserver
import threading

from tests import http_stub

_EXPIRES = '2099-01-01T00:00:00.000000Z'
_ISSUED = '2026-01-01T00:00:00.000000Z'


class FakeKeystone:
    """Start with :meth:`start`; ``url`` is the identity URL (``.../v3``).

    :param catalog: ``{service type: URL}`` (the same URL for the public,
        internal and admin interfaces)
    """

    def __init__(self, user, password, project, catalog, token='tok-1'):
        self.user = user
        self.password = password
        self.project = project
        self.catalog = dict(catalog)
        self.token = token
        self.logins = []
        self.validations = []
        self._server = None

    @property
    def url(self):
        return f'http://127.0.0.1:{self._server.server_address[1]}/v3'

    def token_body(self):
        domain = {'id': 'default', 'name': 'Default'}
        return {'token': {
            'methods': ['password'], 'expires_at': _EXPIRES,
            'issued_at': _ISSUED, 'audit_ids': ['a1'],
            'user': {'id': 'u1', 'name': self.user, 'domain': domain},
            'project': {'id': 'p1', 'name': self.project,
                        'domain': domain},
            'roles': [{'id': 'r1', 'name': 'admin'}],
            'catalog': [
                {'type': kind, 'name': kind, 'id': f's{i}',
                 'endpoints': [{'id': f'e{i}{face[0]}', 'interface': face,
                                'region': 'RegionOne',
                                'region_id': 'RegionOne', 'url': url}
                               for face in ('public', 'internal', 'admin')]}
                for i, (kind, url) in enumerate(self.catalog.items())],
        }}

    def _login_ok(self, body):
        try:
            auth = body['auth']
            user = auth['identity']['password']['user']
            project = auth['scope']['project']
        except (KeyError, TypeError):
            return False
        self.logins.append((user.get('name'), user.get('password')))
        return (user.get('name') == self.user and
                user.get('password') == self.password and
                project.get('name') == self.project)

    def _route(self, method, path, headers, body):
        """(status, body dict or None, token header or None)."""
        path = path.split('?', 1)[0].rstrip('/')
        if method == 'POST' and path == '/v3/auth/tokens':
            try:
                login = json.loads(body or b'{}')
            except ValueError:
                login = None
            if self._login_ok(login):
                return 201, self.token_body(), self.token
            return 401, None, None
        if method == 'GET' and path == '/v3/auth/tokens':
            subject = headers.get('x-subject-token')
            self.validations.append(subject)
            if subject == self.token:
                return 200, self.token_body(), self.token
            return 404, None, None
        if method == 'GET' and path in ('', '/v3'):
            version = {'id': 'v3.14', 'status': 'stable',
                       'updated': '2020-04-07T00:00:00Z',
                       'links': [{'rel': 'self', 'href': self.url + '/'}]}
            return 200, ({'version': version} if path == '/v3' else
                         {'versions': {'values': [version]}}), None
        return 404, None, None

    def start(self):
        fake = self

        # plain socketserver: see tests/http_stub.py
        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                while True:  # keep-alive
                    request = http_stub.read_request(self.rfile)
                    if request is None:
                        return
                    method, path, headers, body = request
                    status, answer, token = fake._route(method, path,
                                                        headers, body)
                    data = json.dumps(answer or {'error': {
                        'code': status, 'title': 'Unauthorized',
                        'message': 'The request you have made requires '
                                   'authentication.'}}).encode()
                    head = (f'HTTP/1.1 {status} X\r\n'
                            f'Content-Type: application/json\r\n'
                            f'Content-Length: {len(data)}\r\n')
                    if token:
                        head += f'X-Subject-Token: {token}\r\n'
                    self.wfile.write((head + '\r\n').encode() + data)

        self._server = socketserver.ThreadingTCPServer(('127.0.0.1', 0),
                                                       Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,),
                         daemon=True).start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
