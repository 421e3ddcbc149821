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

"""The publishers' formats -> the layout the loaders and scenarios read.

Each converter reads the downloaded archives as the publisher ships them
(streamed: the Alibaba usage table is 25 GB uncompressed) and writes its
files into ``out_dir`` (a fresh temporary folder that fetch renames into
place once everything is written). The layout is the one described in
``doc/source/traces.rst`` (one folder per set, CSV with a header row).
"""

import csv
import io
import itertools
import math
import os
import tarfile
import zipfile

import numpy as np

#: The 16 Alibaba machines the project's subset holds (the first machines
#: of the publisher's machine_usage table); the ``alibaba`` scenario
#: replays m_1934 .. m_1945.
ALIBABA_MACHINES = tuple(f'm_{i}' for i in range(1932, 1948))
ALIBABA_USAGE_COLUMNS = ('machine_id', 'time_stamp', 'cpu_util_percent',
                         'mem_util_percent', 'mem_gps', 'mkpi', 'net_in',
                         'net_out', 'disk_io_percent')
ALIBABA_META_COLUMNS = ('machine_id', 'time_stamp', 'failure_domain_1',
                        'failure_domain_2', 'cpu_num', 'mem_size', 'status')
ALIBABA_5MIN_COLUMNS = ('machine_id', 'time_stamp', 'n_samples', 'cpu_mean',
                        'cpu_max', 'mem_mean', 'net_in_mean', 'net_out_mean',
                        'disk_io_mean')
BIN = 300


class ConversionError(ValueError):
    """An archive is not in the publisher's format; the message names the
    archive, the member and what was expected.
    """


def _text_lines(raw, block=1 << 20):
    """Decoded lines of a binary stream, read in blocks (a streamed tar
    member cannot be wrapped in io.TextIOWrapper: it is not seekable).
    """
    rest = b''
    for chunk in iter(lambda: raw.read(block), b''):
        *lines, rest = (rest + chunk).split(b'\n')
        for line in lines:
            yield line.decode('utf-8')
    if rest:
        yield rest.decode('utf-8')


def _tar_csv_rows(archive, member_name):
    """Rows of the CSV member ``member_name`` of a .tar.gz, streamed."""
    try:
        with tarfile.open(archive, 'r|gz') as tar:
            for member in tar:
                if os.path.basename(member.name) != member_name:
                    continue
                yield from csv.reader(_text_lines(tar.extractfile(member)))
                return
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ConversionError(f'{archive}: not a readable .tar.gz ({exc})') \
            from None
    raise ConversionError(f'{archive}: no member named {member_name}')


def _write_csv(path, header, rows):
    with open(path, 'w', encoding='utf-8', newline='') as f:
        writer = csv.writer(f, lineterminator='\n')
        writer.writerow(header)
        writer.writerows(rows)


def _percent(text):
    """A percent cell as float; blank or invalid (-1, 101) -> NaN."""
    try:
        value = float(text)
    except ValueError:
        return np.nan
    return value if 0 <= value <= 100 else np.nan


def _number(text):
    try:
        return float(text)
    except ValueError:
        return np.nan


def _mean(values, digits):
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if not values.size:
        return ''
    # an exactly rounded sum: a bin of equal readings has an exact mean,
    # so halves round alike everywhere (the loaders' cpu and memory means
    # then match the project's subset to the last digit)
    return float(np.round(math.fsum(values) / values.size, digits))


def alibaba_bins(rows):
    """5-minute bins of one machine's raw rows (sorted by time): the rows
    of machine_usage_5min.csv. Bad percent values (-1, 101) are left out
    of the means; a bin without samples is absent.
    """
    out = []
    for start, group in itertools.groupby(
            rows, key=lambda r: int(r[1]) // BIN * BIN):
        sel = list(group)
        cpu = [_percent(r[2]) for r in sel]
        cpu_ok = [c for c in cpu if not np.isnan(c)]
        out.append((sel[0][0], start, len(sel), _mean(cpu, 2),
                    int(max(cpu_ok)) if cpu_ok else '',
                    _mean([_percent(r[3]) for r in sel], 2),
                    _mean([_number(r[6]) for r in sel], 3),
                    _mean([_number(r[7]) for r in sel], 3),
                    _mean([_percent(r[8]) for r in sel], 2)))
    return out


def alibaba_machines(archives, out_dir, machines=ALIBABA_MACHINES):
    """machine_usage.tar.gz and machine_meta.tar.gz -> machine_usage_raw.csv,
    machine_usage_5min.csv and machine_meta.csv of ``machines``.

    :param archives: {'machine_usage.tar.gz': path,
        'machine_meta.tar.gz': path}
    """
    wanted = set(machines)
    usage = archives['machine_usage.tar.gz']
    per = {m: [] for m in machines}
    for line, row in enumerate(_tar_csv_rows(usage, 'machine_usage.csv'), 1):
        if not row or row[0] not in wanted:
            continue
        if len(row) != len(ALIBABA_USAGE_COLUMNS):
            raise ConversionError(
                f'{usage}: machine_usage.csv line {line}: expected '
                f'{len(ALIBABA_USAGE_COLUMNS)} columns '
                f'({",".join(ALIBABA_USAGE_COLUMNS)}), got {len(row)}')
        per[row[0]].append(row)
    empty = [m for m in machines if not per[m]]
    if len(empty) == len(machines):
        raise ConversionError(f'{usage}: machine_usage.csv has no row of '
                              f'{machines[0]} .. {machines[-1]}')
    raw, binned = [], []
    for m in machines:
        rows = sorted(per[m], key=lambda r: int(r[1]))
        raw.extend(rows)
        binned.extend(alibaba_bins(rows) if rows else [])
    _write_csv(os.path.join(out_dir, 'machine_usage_raw.csv'),
               ALIBABA_USAGE_COLUMNS, raw)
    _write_csv(os.path.join(out_dir, 'machine_usage_5min.csv'),
               ALIBABA_5MIN_COLUMNS, binned)
    meta = [r for r in _tar_csv_rows(archives['machine_meta.tar.gz'],
                                     'machine_meta.csv')
            if r and r[0] in wanted]
    meta.sort(key=lambda r: (machines.index(r[0]), int(r[1])))
    _write_csv(os.path.join(out_dir, 'machine_meta.csv'),
               ALIBABA_META_COLUMNS, meta)
    return sorted(os.listdir(out_dir))


# -- Bitbrains Rnd (GWA-T-12) ------------------------------------------------

#: Columns of one Rnd VM file (separator ';' then a tab).
BITBRAINS_COLUMNS = (
    'Timestamp [ms]', 'CPU cores', 'CPU capacity provisioned [MHZ]',
    'CPU usage [MHZ]', 'CPU usage [%]', 'Memory capacity provisioned [KB]',
    'Memory usage [KB]', 'Disk read throughput [KB/s]',
    'Disk write throughput [KB/s]', 'Network received throughput [KB/s]',
    'Network transmitted throughput [KB/s]')
#: Chronically hot VMs kept whatever the selection rule says (a family of
#: similar 8-core compute VMs), and the 20 VMs of the multi-metric file.
BITBRAINS_HOT = (41, 46, 51, 57, 62, 67, 72, 77, 186, 407)
BITBRAINS_MULTI = (41, 57, 81, 186, 193, 197, 206, 235, 253, 266, 270, 297,
                   303, 333, 392, 407, 410, 411, 412, 413)
BITBRAINS_MULTI_MONTH = '2013-8'
DAY_LAG, WEEK_LAG = 288, 2016


def _bitbrains_file(zf, name):
    """(n, 11) float array of one VM-month file; the timestamp column is
    in seconds despite its '[ms]' label.
    """
    with zf.open(name) as raw:
        text = io.TextIOWrapper(raw, encoding='utf-8', newline='')
        header = [h.strip() for h in text.readline().split(';')]
        if tuple(header) != BITBRAINS_COLUMNS:
            raise ConversionError(f'{name}: expected the columns '
                                  f'{"; ".join(BITBRAINS_COLUMNS)}, got '
                                  f'{"; ".join(header)}')
        rows = [[float(x) for x in line.split(';')] for line in text
                if line.strip()]
    return np.array(rows, dtype=float).reshape(-1, len(BITBRAINS_COLUMNS))


def _grid(ts, values, start, n_slots):
    """Values snapped to the nearest 300 s slot; the first sample of a slot
    wins (duplicates and reorders are dropped).
    """
    out = np.full(n_slots, np.nan)
    slot = np.round((ts - start) / BIN).astype(int)
    ok = (slot >= 0) & (slot < n_slots)
    slot, values = slot[ok], values[ok]
    first = np.unique(slot, return_index=True)[1]
    out[slot[first]] = values[first]
    return out


def _acf(x, lag):
    if x.size <= lag:
        return np.nan
    a, b = x[:-lag], x[lag:]
    ok = ~np.isnan(a) & ~np.isnan(b)
    if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return np.nan
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def _fmt(x, digits):
    return '' if x is None or np.isnan(x) else round(float(x), digits)


def bitbrains_rnd(archives, out_dir):
    """rnd.zip -> cpu_pct_5min_2013Q3.csv (the selected VMs' CPU %),
    vm_summary.csv (every VM) and multi_metric_5min_2013-08.csv.

    Selection (as in the project's subset): every VM at or above 90 % CPU
    between 0.1 % and 20 % of the time, the chronically hot VMs of
    :data:`BITBRAINS_HOT`, and the 10 busiest VMs that never reach 90 %
    and repeat daily (lag-1-day autocorrelation > 0.5).
    """
    path = archives['rnd.zip']
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ConversionError(f'{path}: not a readable zip ({exc})') \
            from None
    with zf:
        members = {}
        for name in zf.namelist():
            parts = name.strip('/').split('/')
            if len(parts) >= 2 and parts[-1].endswith('.csv') and \
                    parts[-2].startswith('2013-'):
                members.setdefault(int(parts[-1][:-4]), []).append(
                    (parts[-2], name))
        if not members:
            raise ConversionError(f'{path}: no rnd/2013-<month>/<n>.csv '
                                  f'member')
        data = {vm: {month: _bitbrains_file(zf, name)
                     for month, name in sorted(files)}
                for vm, files in sorted(members.items())}
    stamps = np.concatenate([a[:, 0] for months in data.values()
                             for a in months.values() if a.size])
    start = np.round(stamps.min() / BIN) * BIN
    n_slots = int(np.round((stamps.max() - start) / BIN)) + 1
    grid_ts = start + BIN * np.arange(n_slots)
    summary, cpu = [], {}
    for vm, months in data.items():
        rows = np.concatenate([a for a in months.values() if a.size]) \
            if any(a.size for a in months.values()) else np.empty((0, 11))
        pct = rows[:, 4]
        gridded = _grid(rows[:, 0], pct, start, n_slots)
        cpu[vm] = gridded
        ge90 = float((pct >= 90).mean()) if pct.size else np.nan
        summary.append({
            'vm': vm,
            'cores': _fmt(np.median(rows[:, 1]) if pct.size else np.nan, 0),
            'cap_mhz': _fmt(np.median(rows[:, 2]) if pct.size else np.nan,
                            1),
            'mem_cap_kb': _fmt(np.median(rows[:, 5]) if pct.size
                               else np.nan, 0),
            'n_samples': int(pct.size),
            'missing_frac': _fmt(np.isnan(gridded).mean(), 4),
            'cpu_mean': _fmt(pct.mean() if pct.size else np.nan, 2),
            'cpu_p95': _fmt(np.percentile(pct, 95) if pct.size else np.nan,
                            2),
            'cpu_max': _fmt(pct.max() if pct.size else np.nan, 2),
            'frac_ge90': _fmt(ge90, 4),
            'acf_5min': _fmt(_acf(gridded, 1), 3),
            'acf_1day': _fmt(_acf(gridded, DAY_LAG), 3),
            'acf_7day': _fmt(_acf(gridded, WEEK_LAG), 3),
            '_ge90': ge90, '_mean': pct.mean() if pct.size else np.nan})
    groups = {}
    for s in summary:
        if 0.001 <= s['_ge90'] <= 0.20:
            groups[s['vm']] = 'A_occasional_overload'
    for vm in BITBRAINS_HOT:
        if vm in cpu:
            groups[vm] = 'B_chronic_hot'
    calm = sorted((s for s in summary if s['_ge90'] == 0 and
                   s['acf_1day'] != '' and s['acf_1day'] > 0.5),
                  key=lambda s: -s['_mean'])
    for s in calm[:10]:
        groups.setdefault(s['vm'], 'C_periodic_normal')
    selected = sorted(groups)
    multi = [vm for vm in BITBRAINS_MULTI if vm in data]
    for s in summary:
        s['group'] = groups.get(s['vm'], '')
        s['in_cpu_file'] = int(s['vm'] in groups)
        s['in_multi_file'] = int(s['vm'] in multi)
    columns = [k for k in summary[0] if not k.startswith('_')]
    _write_csv(os.path.join(out_dir, 'vm_summary.csv'), columns,
               [[s[k] for k in columns] for s in summary])
    _write_csv(os.path.join(out_dir, 'cpu_pct_5min_2013Q3.csv'),
               ['ts'] + [f'vm{vm}' for vm in selected],
               [[int(t)] + [_fmt(cpu[vm][i], 1) for vm in selected]
                for i, t in enumerate(grid_ts)])
    long_rows = []
    for vm in multi:
        month = data[vm].get(BITBRAINS_MULTI_MONTH)
        if month is None or not month.size:
            continue
        slot = np.round(month[:, 0] / BIN) * BIN
        _, first = np.unique(slot, return_index=True)
        for i in first:
            r = month[i]
            mem_pct = 100.0 * r[6] / r[5] if r[5] > 0 else np.nan
            long_rows.append([vm, int(slot[i]), _fmt(r[4], 2), _fmt(r[2], 0),
                              _fmt(mem_pct, 2), _fmt(r[5] / 1024.0, 0),
                              _fmt(r[7], 2), _fmt(r[8], 2), _fmt(r[9], 2),
                              _fmt(r[10], 2)])
    _write_csv(os.path.join(out_dir, 'multi_metric_5min_2013-08.csv'),
               ('vm', 'ts', 'cpu_pct', 'cpu_cap_mhz', 'mem_pct',
                'mem_cap_mb', 'disk_read_kbs', 'disk_write_kbs',
                'net_rx_kbs', 'net_tx_kbs'), long_rows)
    return sorted(os.listdir(out_dir))
