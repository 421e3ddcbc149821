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

"""``watcher-failpredict traces``: the real trace sets.

``traces list`` shows each public set (licence, citation, size, whether it
is present), ``traces fetch NAME`` downloads it from its publisher,
verifies, converts and installs it, ``traces path [NAME]`` prints where
the traces directory (or a set) is. The directory is ``--traces DIR``,
else ``$FAILPREDICT_TRACES``, else ``$XDG_CACHE_HOME/watcher-failpredict/
traces`` (tracesets.location).
"""

import argparse

from watcher_failpredict.tracesets import catalog
from watcher_failpredict.tracesets import download
from watcher_failpredict.tracesets import fetch
from watcher_failpredict.tracesets import location


def add_parser(subparsers):
    """Register ``traces`` and its actions on the main parser's
    subparsers.
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument('--traces', metavar='DIR',
                        help=f'traces directory (default: '
                             f'${location.TRACES_ENV}, else '
                             f'$XDG_CACHE_HOME/{location.CACHE_SUBDIR})')
    p = subparsers.add_parser(
        'traces', allow_abbrev=False,
        help='list, fetch and locate the real trace sets',
        description='The public utilisation traces the loaders and the '
                    'testbed scenarios read: list them, fetch one from its '
                    'publisher (verified, converted, installed atomically) '
                    'or print where they are.')
    actions = p.add_subparsers(dest='traces_action', metavar='ACTION')
    actions.required = True
    actions.add_parser('list', parents=[common], allow_abbrev=False,
                       help='each set: licence, citation, size, presence')
    f = actions.add_parser(
        'fetch', parents=[common], allow_abbrev=False,
        help='download, verify, convert and install one set',
        description='Download a set from its publisher (resumable), check '
                    'its sha256, convert it to the layout the loaders read '
                    'and install it in the traces directory.')
    f.add_argument('name', metavar='NAME', choices=catalog.NAMES,
                   help=', '.join(catalog.NAMES))
    f.add_argument('--sha256', action='append', default=[],
                   metavar='FILE=HEX',
                   help='the digest you expect for a file the publisher '
                        'gives none for (repeatable); fetch prints the one '
                        'it computed')
    f.add_argument('--accept-unverified', action='store_true',
                   help='convert a file whose digest nobody published '
                        'without checking it')
    f.add_argument('--force', action='store_true',
                   help='fetch again even if the set is present')
    f.add_argument('--keep-downloads', action='store_true',
                   help='keep the publisher\'s archives in '
                        f'<traces>/{fetch.DOWNLOADS} after converting')
    f.add_argument('--timeout', type=float, default=60.0,
                   help='seconds without data before giving up (default: '
                        '60)')
    path = actions.add_parser('path', parents=[common], allow_abbrev=False,
                              help='print the traces directory, or a set\'s '
                                   'folder')
    path.add_argument('name', nargs='?', metavar='NAME',
                      choices=catalog.NAMES)
    p.set_defaults(func=run)
    return p


def _list(args, stdout):
    root = location.traces_dir(args.traces)
    stdout.write(f'traces directory: {root} (from '
                 f'{location.where_from(args.traces)})\n')
    for trace_set in catalog.CATALOG:
        state, folder = catalog.status(trace_set, args.traces)
        download_size = catalog.download_size(trace_set)
        size = ('shipped with the package' if trace_set.shipped
                else f'download {download.human_size(download_size)}')
        stdout.write(f'\n{trace_set.name}: {state} ({folder})\n'
                     f'  {trace_set.title}\n'
                     f'  level: {trace_set.level}\n'
                     f'  size: {size}\n'
                     f'  licence: {trace_set.licence}\n'
                     f'  cite: {trace_set.citation}\n'
                     f'  publisher: {trace_set.homepage}\n')
        if state in ('missing', 'partial'):
            stdout.write(f'  {catalog.fetch_instruction(trace_set.folder)}'
                         f'\n')
        unpinned = [s.filename for s in trace_set.sources if not s.sha256]
        if unpinned:
            stdout.write(f'  no published sha256 for {", ".join(unpinned)}:'
                         f' fetch needs --sha256 FILE=HEX or '
                         f'--accept-unverified\n')
    return 0


def _fetch(args, stdout, stderr):
    trace_set = catalog.get(args.name)
    if trace_set.research_only:
        stderr.write(f'{trace_set.name}: licence: {trace_set.licence}; '
                     f'cite {trace_set.citation}\n')
    state, folder = fetch.fetch(
        args.name, args.traces, fetch.parse_expected(args.sha256),
        args.accept_unverified, stderr, args.keep_downloads, args.force,
        args.timeout)
    notes = {'shipped': 'shipped with the package, nothing to fetch',
             'present': 'already present (--force fetches it again)',
             'fetched': 'fetched'}
    stdout.write(f'{trace_set.name}: {notes[state]}: {folder}\n')
    return 0


def run(args, stdout, stderr):
    if args.traces_action == 'list':
        return _list(args, stdout)
    if args.traces_action == 'fetch':
        return _fetch(args, stdout, stderr)
    if args.name:
        stdout.write(catalog.status(catalog.get(args.name),
                                    args.traces)[1] + '\n')
    else:
        stdout.write(location.traces_dir(args.traces) + '\n')
    return 0
