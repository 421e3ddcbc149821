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

"""watcher-failpredict traces: download, verify, convert, install.

Everything runs against a real HTTP server on 127.0.0.1 serving small
files made here: a good file, a wrong digest, a connection cut short and
resumed with a Range request, a 404, a server that ignores Range, and
archives in the publishers' own formats (Alibaba's header-less CSV in a
.tar.gz, Bitbrains' ';<TAB>' files in a zip).
"""

import dataclasses
import hashlib
import io
import os
import socketserver
import tarfile
import threading
import zipfile

import numpy as np
import pytest

from watcher_failpredict.cmd import main as cli
from watcher_failpredict.prediction import traces
from watcher_failpredict.tracesets import catalog
from watcher_failpredict.tracesets import convert
from watcher_failpredict.tracesets import download
from watcher_failpredict.tracesets import fetch
from watcher_failpredict.tracesets import location


class _Handler(socketserver.StreamRequestHandler):
    """GET with Range, 404, a cut-short body and a Range-ignoring path.

    On socketserver, not http.server: the suite's Watcher imports leave an
    eventlet-patched ``http.server`` in sys.modules, whose server never
    answers here (as tests/conftest.py's fake InfluxDB notes).
    """

    def handle(self):
        server = self.server
        line = self.rfile.readline().decode('ascii')
        if not line:
            return
        _method, path, _version = line.split()
        headers = {}
        for raw in iter(self.rfile.readline, b'\r\n'):
            key, _, value = raw.decode('ascii').partition(':')
            headers[key.strip().lower()] = value.strip()
        rng = headers.get('range')
        server.requests.append((path, rng))
        body = server.files.get(path)
        if body is None:
            self.wfile.write(b'HTTP/1.1 404 Not Found\r\n'
                             b'Content-Length: 0\r\nConnection: close'
                             b'\r\n\r\n')
            return
        start = 0
        head = 'HTTP/1.1 200 OK\r\n'
        if rng and path not in server.ignore_range:
            start = int(rng.split('=')[1].rstrip('-'))
            head = ('HTTP/1.1 206 Partial Content\r\nContent-Range: '
                    f'bytes {start}-{len(body) - 1}/{len(body)}\r\n')
        head += (f'Content-Length: {len(body) - start}\r\n'
                 'Connection: close\r\n\r\n')
        cut = server.cut_after.pop(path, None)
        self.wfile.write(head.encode('ascii') + body[start:cut])
        self.wfile.flush()


@pytest.fixture
def http_server():
    server = socketserver.ThreadingTCPServer(('127.0.0.1', 0), _Handler)
    server.daemon_threads = True
    server.files, server.requests = {}, []
    server.cut_after, server.ignore_range = {}, set()
    server.url = f'http://127.0.0.1:{server.server_address[1]}'
    thread = threading.Thread(target=server.serve_forever, args=(0.05,),
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _sha(data):
    return hashlib.sha256(data).hexdigest()


PAYLOAD = bytes(range(256)) * 4096          # 1 MiB, several read blocks


def test_good_file_is_downloaded_verified_and_renamed(http_server,
                                                      tmp_path):
    http_server.files['/good.bin'] = PAYLOAD
    dest = str(tmp_path / 'good.bin')
    progress = io.StringIO()
    digest = download.download(f'{http_server.url}/good.bin', dest,
                               _sha(PAYLOAD), progress)
    assert digest == _sha(PAYLOAD)
    with open(dest, 'rb') as f:
        assert f.read() == PAYLOAD
    assert os.listdir(tmp_path) == ['good.bin']        # no .part left
    # not a terminal: one line per tenth, the last one complete
    lines = progress.getvalue().splitlines()
    assert lines[-1] == ('good.bin [##############################] '
                         '1.0 MB / 1.0 MB')
    assert 2 <= len(lines) <= 11


def test_wrong_digest_is_refused_and_deleted(http_server, tmp_path):
    http_server.files['/bad.bin'] = PAYLOAD
    dest = str(tmp_path / 'bad.bin')
    url = f'{http_server.url}/bad.bin'
    with pytest.raises(download.DownloadError,
                       match=rf'{url}: sha256 {_sha(PAYLOAD)} does not '
                             rf'match the expected {"0" * 64}; the download '
                             rf'was deleted'):
        download.download(url, dest, '0' * 64)
    assert os.listdir(tmp_path) == []


def test_truncated_download_resumes_with_a_range_request(http_server,
                                                         tmp_path):
    http_server.files['/big.bin'] = PAYLOAD
    http_server.cut_after['/big.bin'] = 300_000
    dest = str(tmp_path / 'big.bin')
    url = f'{http_server.url}/big.bin'
    with pytest.raises(download.DownloadError,
                       match=rf'{url}: .*after 300000 .*bytes.*run the '
                             rf'command again to resume'):
        download.download(url, dest, _sha(PAYLOAD))
    assert os.path.getsize(dest + '.part') == 300_000
    assert not os.path.exists(dest)
    digest = download.download(url, dest, _sha(PAYLOAD))
    assert digest == _sha(PAYLOAD)
    assert http_server.requests == [('/big.bin', None),
                                    ('/big.bin', 'bytes=300000-')]
    with open(dest, 'rb') as f:
        assert f.read() == PAYLOAD
    assert not os.path.exists(dest + '.part')


def test_server_ignoring_range_restarts_the_file(http_server, tmp_path):
    http_server.files['/plain.bin'] = PAYLOAD
    http_server.ignore_range.add('/plain.bin')
    dest = str(tmp_path / 'plain.bin')
    with open(dest + '.part', 'wb') as f:
        f.write(b'stale bytes of another attempt')
    assert download.download(f'{http_server.url}/plain.bin', dest,
                             _sha(PAYLOAD)) == _sha(PAYLOAD)
    assert http_server.requests[0][1] == 'bytes=30-'


def test_404_names_the_url(http_server, tmp_path):
    url = f'{http_server.url}/missing.tar.gz'
    with pytest.raises(download.DownloadError,
                       match=rf'^{url}: HTTP 404 Not Found$'):
        download.download(url, str(tmp_path / 'x'))
    assert os.listdir(tmp_path) == []


def test_unreachable_host_names_the_url(tmp_path):
    with pytest.raises(download.DownloadError,
                       match=r'^http://127\.0\.0\.1:9/x\.zip: cannot '
                             r'connect'):
        download.download('http://127.0.0.1:9/x.zip', str(tmp_path / 'x'),
                          timeout=5)


# -- the publishers' formats ------------------------------------------------

ALIBABA_ROWS = [
    # machine, t, cpu, mem, mem_gps, mkpi, net_in, net_out, disk_io
    ('m_1999', '0', '50', '60', '', '', '1', '1', '1'),   # not kept
    ('m_1932', '330', '40', '70', '', '', '10.5', '20', '4'),
    ('m_1932', '0', '20', '80', '', '', '10', '19', '101'),
    ('m_1932', '60', '30', '90', '', '', '10.2', '19.5', '6'),
    ('m_1933', '620', '-1', '50', '', '', '5', '5', '2'),
    ('m_1933', '700', '80', '52', '', '', '6', '5', '3'),
]


def _tar_gz(path, member, text):
    data = text.encode()
    with tarfile.open(path, 'w:gz') as tar:
        info = tarfile.TarInfo(member)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with open(path, 'rb') as f:
        return f.read()


def _alibaba_archives(tmp_path):
    usage = _tar_gz(str(tmp_path / 'machine_usage.tar.gz'),
                    'machine_usage.csv',
                    ''.join(','.join(r) + '\n' for r in ALIBABA_ROWS))
    meta = _tar_gz(str(tmp_path / 'machine_meta.tar.gz'),
                   'machine_meta.csv',
                   'm_1932,0,91,18,96,100,USING\n'
                   'm_1999,0,1,2,96,100,USING\n'
                   'm_1933,0,92,19,96,100,USING\n')
    return usage, meta


def _read(path):
    with open(path, encoding='utf-8') as f:
        return f.read().splitlines()


def test_alibaba_archive_is_converted_to_the_loader_layout(tmp_path):
    _alibaba_archives(tmp_path)
    out = tmp_path / 'out'
    out.mkdir()
    files = convert.alibaba_machines(
        {'machine_usage.tar.gz': str(tmp_path / 'machine_usage.tar.gz'),
         'machine_meta.tar.gz': str(tmp_path / 'machine_meta.tar.gz')},
        str(out))
    assert files == ['machine_meta.csv', 'machine_usage_5min.csv',
                     'machine_usage_raw.csv']
    # kept machines only, sorted by machine then time, with a header
    assert _read(out / 'machine_usage_raw.csv') == [
        ','.join(convert.ALIBABA_USAGE_COLUMNS),
        'm_1932,0,20,80,,,10,19,101', 'm_1932,60,30,90,,,10.2,19.5,6',
        'm_1932,330,40,70,,,10.5,20,4', 'm_1933,620,-1,50,,,5,5,2',
        'm_1933,700,80,52,,,6,5,3']
    # 300 s bins; invalid percents (-1, 101) left out of the means
    assert _read(out / 'machine_usage_5min.csv') == [
        ','.join(convert.ALIBABA_5MIN_COLUMNS),
        'm_1932,0,2,25.0,30,85.0,10.1,19.25,6.0',
        'm_1932,300,1,40.0,40,70.0,10.5,20.0,4.0',
        'm_1933,600,2,80.0,80,51.0,5.5,5.0,2.5']
    assert _read(out / 'machine_meta.csv') == [
        ','.join(convert.ALIBABA_META_COLUMNS),
        'm_1932,0,91,18,96,100,USING', 'm_1933,0,92,19,96,100,USING']
    with pytest.raises(convert.ConversionError,
                       match=r'machine_meta\.tar\.gz: no member named '
                             r'machine_usage\.csv'):
        convert.alibaba_machines(
            {'machine_usage.tar.gz': str(tmp_path / 'machine_meta.tar.gz'),
             'machine_meta.tar.gz': str(tmp_path / 'machine_meta.tar.gz')},
            str(out))


def _bitbrains_zip(path, n_steps=600):
    """Three VMs over two months: vm1 occasionally >= 90 %, vm2 idle,
    vm3 (not in the zip's first month) busy; timestamps in seconds, a
    few seconds off the 300 s grid.
    """
    header = ';\t'.join(convert.BITBRAINS_COLUMNS)
    t0 = 1372629804
    with zipfile.ZipFile(path, 'w') as zf:
        for month, offset in (('2013-7', 0), ('2013-8', n_steps)):
            for vm in (1, 2, 3):
                if vm == 3 and month == '2013-7':
                    continue
                lines = [header]
                for i in range(n_steps):
                    k = offset + i
                    pct = {1: 95.0 if k % 100 == 0 else 20.0, 2: 0.0,
                           3: 50.0}[vm]
                    lines.append(';\t'.join(str(x) for x in (
                        t0 + 300 * k, 2, 5000.0, 50.0 * pct, pct,
                        4194304.0, 2097152.0, 1.5, 2.5, 3.5, 4.5)))
                zf.writestr(f'rnd/{month}/{vm}.csv', '\n'.join(lines) + '\n')
    with open(path, 'rb') as f:
        return f.read()


def test_bitbrains_zip_is_converted_to_the_loader_layout(tmp_path):
    _bitbrains_zip(str(tmp_path / 'rnd.zip'))
    out = tmp_path / 'traces' / 'bitbrains_rnd'
    out.mkdir(parents=True)
    convert.bitbrains_rnd({'rnd.zip': str(tmp_path / 'rnd.zip')}, str(out))
    cpu = _read(out / 'cpu_pct_5min_2013Q3.csv')
    # only vm1 is at or above 90 % between 0.1 % and 20 % of the time
    assert cpu[0] == 'ts,vm1'
    assert len(cpu) == 1 + 1200
    assert cpu[1] == '1372629900,95.0' and cpu[2] == '1372630200,20.0'
    summary = _read(out / 'vm_summary.csv')
    assert summary[0].split(',')[:4] == ['vm', 'cores', 'cap_mhz',
                                         'mem_cap_kb']
    rows = {r.split(',')[0]: r.split(',') for r in summary[1:]}
    head = summary[0].split(',')
    vm1 = dict(zip(head, rows['1']))
    assert vm1['cores'] == '2.0' and vm1['frac_ge90'] == '0.01'
    assert vm1['n_samples'] == '1200' and vm1['cpu_max'] == '95.0'
    assert vm1['group'] == 'A_occasional_overload'
    assert dict(zip(head, rows['3']))['missing_frac'] == '0.5'
    multi = _read(out / 'multi_metric_5min_2013-08.csv')
    assert multi == [multi[0]]      # none of the 20 multi-metric VMs here
    # the loader reads the result: one VM of 2 cores on one host of 2
    windows = traces.load_bitbrains(traces=str(tmp_path / 'traces'),
                                    vms_per_host=1, overcommit=1.0)
    assert windows.names == ('bb-host-00',) and windows.step == 300
    np.testing.assert_allclose(windows.data['cpu'][0, :3], [95, 20, 20])


# -- fetch: download, verify, convert, install -------------------------------

def _local_alibaba(server, tmp_path, pin=True):
    usage, meta = _alibaba_archives(tmp_path)
    server.files['/machine_usage.tar.gz'] = usage
    server.files['/machine_meta.tar.gz'] = meta
    real = catalog.get('alibaba')
    return dataclasses.replace(real, sources=(
        dataclasses.replace(real.sources[0],
                            urls=(f'{server.url}/machine_usage.tar.gz',),
                            sha256=_sha(usage) if pin else None,
                            size=len(usage)),
        dataclasses.replace(real.sources[1],
                            urls=(f'{server.url}/missing/meta.tar.gz',
                                  f'{server.url}/machine_meta.tar.gz'),
                            sha256=_sha(meta), size=len(meta))))


def _use_catalog(monkeypatch, *sets):
    keep = [s for s in catalog.CATALOG
            if s.name not in {x.name for x in sets}]
    monkeypatch.setattr(catalog, 'CATALOG', tuple(sets) + tuple(keep))


def test_fetch_installs_a_pinned_set_the_loader_reads(http_server, tmp_path,
                                                      monkeypatch):
    _use_catalog(monkeypatch, _local_alibaba(http_server, tmp_path))
    root = tmp_path / 'traces'
    log = io.StringIO()
    state, folder = fetch.fetch('alibaba', str(root), stream=log)
    assert (state, folder) == ('fetched', str(root / 'alibaba2018_machines'))
    assert sorted(os.listdir(folder)) == [
        'SOURCE.txt', 'machine_meta.csv', 'machine_usage_5min.csv',
        'machine_usage_raw.csv']
    # the archives are removed, no temporary folder is left
    assert sorted(os.listdir(root)) == ['.downloads', 'alibaba2018_machines']
    assert os.listdir(root / '.downloads') == []
    text = log.getvalue()
    assert 'machine_usage.tar.gz: sha256 ' in text and 'verified' in text
    # the first location of machine_meta 404s: the mirror is used
    assert f'{http_server.url}/missing/meta.tar.gz: HTTP 404' in text
    provenance = (root / 'alibaba2018_machines' / 'SOURCE.txt').read_text()
    assert 'research or study use only' in provenance
    windows = traces.load_alibaba(traces=str(root))
    assert windows.names == ('m_1932', 'm_1933') and windows.step == 300
    np.testing.assert_allclose(windows.data['cpu'][0, :2], [25.0, 40.0])
    assert fetch.fetch('alibaba', str(root))[0] == 'present'


def test_fetch_refuses_an_unpinned_file_until_its_digest_is_given(
        http_server, tmp_path, monkeypatch):
    trace_set = _local_alibaba(http_server, tmp_path, pin=False)
    _use_catalog(monkeypatch, trace_set)
    digest = _sha(http_server.files['/machine_usage.tar.gz'])
    root = tmp_path / 'traces'
    with pytest.raises(fetch.FetchError,
                       match=rf'publisher of alibaba gives no sha256, and '
                             rf'this download\'s is {digest}.*--sha256 '
                             rf'machine_usage\.tar\.gz={digest}'):
        fetch.fetch('alibaba', str(root))
    assert not os.path.exists(root / 'alibaba2018_machines')
    kept = root / '.downloads' / 'machine_usage.tar.gz'
    assert kept.exists()                      # not downloaded again
    n_requests = len(http_server.requests)
    with pytest.raises(fetch.FetchError,
                       match=r'sha256 .* does not match the expected '
                             r'f{64}; the file was deleted'):
        fetch.fetch('alibaba', str(root),
                    {'machine_usage.tar.gz': 'f' * 64})
    assert not kept.exists()
    state, _ = fetch.fetch('alibaba', str(root),
                           {'machine_usage.tar.gz': digest})
    assert state == 'fetched'
    assert len(http_server.requests) > n_requests


def test_a_pinned_digest_cannot_be_overridden(http_server, tmp_path,
                                              monkeypatch):
    _use_catalog(monkeypatch, _local_alibaba(http_server, tmp_path))
    with pytest.raises(fetch.FetchError,
                       match=r'machine_usage\.tar\.gz: the catalogue pins '
                             r'sha256 [0-9a-f]{64} .*--sha256 gave a{64}'):
        fetch.fetch('alibaba', str(tmp_path / 't'),
                    {'machine_usage.tar.gz': 'a' * 64})
    with pytest.raises(fetch.FetchError, match=r'expected FILE=HEX'):
        fetch.parse_expected(['rnd.zip=abc'])


def test_traces_command_fetch_list_and_path(http_server, tmp_path,
                                            monkeypatch):
    _use_catalog(monkeypatch, _local_alibaba(http_server, tmp_path))
    root = str(tmp_path / 'traces')
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main(['traces', 'fetch', 'alibaba', '--traces', root],
                  out, err)
    assert rc == 0, err.getvalue()
    assert out.getvalue() == (f'alibaba: fetched: '
                              f'{root}/alibaba2018_machines\n')
    assert 'licence: research or study use only' in err.getvalue()
    assert '[##############################]' in err.getvalue()
    monkeypatch.setenv(location.TRACES_ENV, root)
    out = io.StringIO()
    assert cli.main(['traces', 'list'], out, io.StringIO()) == 0
    listing = out.getvalue()
    assert listing.startswith(f'traces directory: {root} (from '
                              f'${location.TRACES_ENV})\n')
    assert f'alibaba: present ({root}/alibaba2018_machines)' in listing
    assert f'bitbrains: missing ({root}/bitbrains_rnd)' in listing
    assert 'fetch it with: watcher-failpredict traces fetch bitbrains' in \
        listing
    assert 'no published sha256 for rnd.zip' in listing
    assert f'azure: shipped ({location.PACKAGED_DIR}/azure_v1_vms)' in \
        listing
    out = io.StringIO()
    assert cli.main(['traces', 'path', 'alibaba'], out, io.StringIO()) == 0
    assert out.getvalue() == f'{root}/alibaba2018_machines\n'
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(['traces', 'fetch', 'azure'], out, err) == 0
    assert out.getvalue() == (f'azure: shipped with the package, nothing to '
                              f'fetch: {location.PACKAGED_DIR}/azure_v1_vms\n')
    http_server.files.clear()
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(['traces', 'fetch', 'alibaba', '--force', '--traces',
                     str(tmp_path / 'other')], out, err) == 2
    assert err.getvalue().endswith(
        f'error: {http_server.url}/machine_usage.tar.gz: HTTP 404 Not '
        f'Found\n')


def test_traces_dir_rules(tmp_path, monkeypatch):
    monkeypatch.delenv(location.TRACES_ENV, raising=False)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
    assert location.traces_dir() == str(
        tmp_path / 'cache' / 'watcher-failpredict' / 'traces')
    monkeypatch.delenv('XDG_CACHE_HOME')
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    assert location.traces_dir() == str(
        tmp_path / 'home' / '.cache' / 'watcher-failpredict' / 'traces')
    monkeypatch.setenv(location.TRACES_ENV, str(tmp_path / 'env'))
    assert location.traces_dir() == str(tmp_path / 'env')
    assert location.traces_dir(str(tmp_path / 'arg')) == str(tmp_path / 'arg')
    with pytest.raises(ValueError, match=r'without \.\.'):
        location.find('../shared/traces/x.csv')
