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

"""The public trace sets the loaders and scenarios read.

Each :class:`TraceSet` names the folder it occupies in the traces directory
(the layout :mod:`watcher_failpredict.prediction.traces` and the testbed's
``traces:`` files read), its licence and citation, and the publisher's
files (:class:`Source`) with their sha256 **where the publisher gives
one**. A source whose digest is not published has ``sha256=None``: fetch
then refuses to convert it unless the operator passes the digest they
expect (``--sha256 FILE=HEX``) or opts in with ``--accept-unverified``,
and prints the digest it computed either way. No digest here was made up.
"""

import dataclasses
import os

from watcher_failpredict.tracesets import location


@dataclasses.dataclass(frozen=True)
class Source:
    """One file as the publisher distributes it."""
    filename: str
    urls: tuple            # official location first, then its mirrors
    sha256: str = None     # None: the publisher gives no digest
    size: int = None       # bytes, when published
    digest_origin: str = ''  # where the pinned digest was published


@dataclasses.dataclass(frozen=True)
class TraceSet:
    name: str              # ``traces fetch NAME``; also the --trace name
    folder: str            # directory in the traces directory
    title: str
    level: str
    licence: str
    citation: str
    homepage: str
    files: tuple           # what the loaders read, relative to folder
    sources: tuple = ()
    research_only: bool = False
    #: shipped inside the package: no fetch needed
    shipped: bool = False
    converter: str = ''    # function name in tracesets.convert


ALIBABA_USAGE_SHA256 = ('3e6ee87fd204bb85b9e234c5c75a5096'
                        '580fdabc8f085b224033080090753a7a')
ALIBABA_META_SHA256 = ('b5b1b786b22cd413a3674b8f2ebfb2f0'
                       '2fac991c95df537f363ef2797c8f6d55')
_ALIBABA_HOSTS = ('http://aliopentrace.oss-cn-beijing.aliyuncs.com/'
                  'v2018Traces',
                  'http://clusterdata2018pubcn.oss-cn-beijing.aliyuncs.com')
_ALIBABA_DIGESTS = ('alibaba/clusterdata cluster-trace-v2018/trace_2018.md, '
                    '"You can verify your download as follows"')

CATALOG = (
    TraceSet(
        name='alibaba',
        folder='alibaba2018_machines',
        title='Alibaba cluster-trace-v2018 machine_usage, 16 physical '
              'machines (m_1932 .. m_1947), 8 days',
        level='physical server: CPU, memory, network, disk',
        licence='research or study use only (Alibaba: "use the trace '
                'however you want as long as it is for research or study '
                'purpose"); never redistribute it',
        citation='Alibaba Group, Alibaba Cluster Trace Program, '
                 'cluster-trace-v2018, '
                 'https://github.com/alibaba/clusterdata',
        homepage='https://github.com/alibaba/clusterdata/tree/master/'
                 'cluster-trace-v2018',
        files=('machine_usage_raw.csv', 'machine_usage_5min.csv',
               'machine_meta.csv'),
        sources=(
            Source('machine_usage.tar.gz',
                   tuple(f'{h}/machine_usage.tar.gz'
                         for h in _ALIBABA_HOSTS),
                   ALIBABA_USAGE_SHA256, 1774523160, _ALIBABA_DIGESTS),
            Source('machine_meta.tar.gz',
                   tuple(f'{h}/machine_meta.tar.gz'
                         for h in _ALIBABA_HOSTS),
                   ALIBABA_META_SHA256, 92432, _ALIBABA_DIGESTS),
        ),
        research_only=True,
        converter='alibaba_machines'),
    TraceSet(
        name='bitbrains',
        folder='bitbrains_rnd',
        title='Bitbrains Rnd (GWA-T-12), 500 VMs, July-September 2013; '
              '60 selected VMs at 5 minutes',
        level='VM: CPU (and memory, disk, network for 20 VMs)',
        licence='research use with attribution (Grid Workloads Archive, '
                'TU Delft); no redistribution licence',
        citation='S. Shen, V. van Beek, A. Iosup, "Statistical '
                 'Characterization of Business-Critical Workloads Hosted '
                 'in Cloud Datacenters", CCGrid 2015',
        homepage='http://gwa.ewi.tudelft.nl/datasets/gwa-t-12-bitbrains',
        files=('cpu_pct_5min_2013Q3.csv', 'vm_summary.csv',
               'multi_metric_5min_2013-08.csv'),
        sources=(
            Source('rnd.zip',
                   ('http://gwa.ewi.tudelft.nl/fileadmin/pds/trace-archives/'
                    'grid-workloads-archive/datasets/gwa-t-12/rnd.zip',)),
        ),
        research_only=True,
        converter='bitbrains_rnd'),
    TraceSet(
        name='azure',
        folder='azure_v1_vms',
        title='Azure Public Dataset V1 (2017), 70 VMs, average and maximum '
              'CPU per 5 minutes, 27.8 days',
        level='VM: CPU',
        licence='CC-BY-4.0 (Microsoft); shipped with this package, see '
                'tracesets/data/azure_v1_vms/ATTRIBUTION.txt',
        citation='E. Cortez et al., "Resource Central: Understanding and '
                 'Predicting Workloads for Improved Resource Management in '
                 'Large Cloud Platforms", SOSP 2017',
        homepage='https://github.com/Azure/AzurePublicDataset/blob/master/'
                 'AzurePublicDatasetV1.md',
        files=('cpu_avg_5min.csv', 'cpu_max_5min.csv'),
        shipped=True),
)

NAMES = tuple(s.name for s in CATALOG)


def get(name):
    """The set called ``name``.

    :raises ValueError: unknown name (the message lists the known ones)
    """
    for trace_set in CATALOG:
        if trace_set.name == name:
            return trace_set
    raise ValueError(f'unknown trace set {name!r}; known: '
                     f'{", ".join(NAMES)}')


def by_folder(folder):
    """The set stored in ``folder``, or None."""
    for trace_set in CATALOG:
        if trace_set.folder == folder:
            return trace_set
    return None


def fetch_instruction(folder):
    """How to get the set stored in ``folder``: the exact command, and for
    a research-only set its licence terms.
    """
    trace_set = by_folder(folder)
    if trace_set is None:
        return (f'no known trace set is stored in {folder}/; put that '
                f'folder in the traces directory (--traces DIR or '
                f'${location.TRACES_ENV})')
    text = (f'fetch it with: watcher-failpredict traces fetch '
            f'{trace_set.name}')
    if trace_set.research_only:
        text += (f' (licence: {trace_set.licence}; cite '
                 f'{trace_set.citation})')
    return text


def missing_files(trace_set, traces=None):
    """The loader files of ``trace_set`` that :func:`location.find` does
    not find (plain or compressed; shipped files count as present).
    """
    out = []
    for name in trace_set.files:
        try:
            location.find(f'{trace_set.folder}/{name}', traces)
        except location.TraceSetMissing:
            out.append(name)
    return out


def status(trace_set, traces=None):
    """``(state, path)``: state is 'present' (in the traces directory),
    'shipped' (read from the package), 'partial' or 'missing'.
    """
    folder = os.path.join(location.traces_dir(traces), trace_set.folder)
    missing = missing_files(trace_set, traces)
    if missing:
        return ('partial' if len(missing) < len(trace_set.files)
                else 'missing'), folder
    first = location.find(f'{trace_set.folder}/{trace_set.files[0]}',
                          traces)
    if first.startswith(location.PACKAGED_DIR + os.sep):
        return 'shipped', os.path.dirname(first)
    return 'present', folder


def download_size(trace_set):
    """Total published size of the sources in bytes, or None if unknown."""
    sizes = [s.size for s in trace_set.sources]
    return sum(sizes) if sizes and None not in sizes else None
