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

"""The request side of the tests' plain-socketserver HTTP stubs.

Plain socketserver rather than http.server: a test module elsewhere in the
suite leaves an eventlet-patched ``http.server`` in sys.modules, whose
green threads never run in other tests (see tests/conftest.py).
"""


def read_request(rfile, lower=True):
    """One HTTP/1.1 request from ``rfile``: ``(method, path, headers,
    body)``, or None when the client closed the connection. Header names
    are lower-cased unless ``lower`` is false.
    """
    line = rfile.readline()
    if not line:
        return None
    method, path, _version = line.decode('ascii').split()
    headers = {}
    for raw in iter(rfile.readline, b'\r\n'):
        key, _, value = raw.decode('utf-8').partition(':')
        key = key.strip()
        headers[key.lower() if lower else key] = value.strip()
    length = headers.get('content-length' if lower else 'Content-Length', 0)
    return method, path, headers, rfile.read(int(length))
