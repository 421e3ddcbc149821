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

"""``watcher-failpredict show-model PATH``: what a model bundle holds."""

from watcher_failpredict.cmd import common
from watcher_failpredict.prediction import bundle as bundle_mod


def add_parser(subparsers):
    s = subparsers.add_parser('show-model', allow_abbrev=False,
                              help='print a model bundle\'s metadata')
    s.add_argument('path', metavar='PATH')
    s.add_argument('--sha256', default=None,
                   help='refuse the file unless its sha256 is this')


def run(args, stdout, stderr):
    bundle = bundle_mod.load_bundle(args.path, expected_sha256=args.sha256)
    md = bundle.metadata
    stdout.write(f'{args.path}\nsha256 {bundle_mod.file_sha256(args.path)}'
                 '\n')
    for key in bundle_mod.REQUIRED_METADATA:
        if key in ('evaluation', 'feature_names'):
            continue
        value = md[key]
        if isinstance(value, (list, tuple)):
            value = ', '.join(str(v) for v in value)
        elif isinstance(value, dict):
            value = ', '.join(f'{k} {v}' for k, v in value.items())
        stdout.write(f'{key}: {value}\n')
    stdout.write(f'feature_names: {", ".join(md["feature_names"])}\n')
    if md.get('evaluation'):
        stdout.write(common.format_evaluation(md['evaluation']) + '\n')
    return 0
