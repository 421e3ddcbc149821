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
    s = subparsers.add_parser(
        'show-model', allow_abbrev=False,
        help='print a model bundle\'s sha256 and metadata',
        description='Print the sha256 of a model bundle (read, never '
                    'unpickled) and, with --sha256 matching it or '
                    '--allow-unverified, what the bundle holds.')
    s.add_argument('path', metavar='PATH')
    common.add_model_check_options(s)


def run(args, stdout, stderr):
    digest = bundle_mod.read_sha256(args.path)
    if not args.sha256 and not args.allow_unverified:
        # the digest is what an operator comes for; the metadata needs the
        # file unpickled, i.e. its code run, which takes a digest or opt-in
        stdout.write(f'{args.path}\nsha256 {digest}\n')
        stderr.write('metadata not shown: the file is a pickle, i.e. code; '
                     'if you trust this file, rerun with --sha256 '
                     f'{digest}\n')
        return 0
    bundle = common.load_checked_bundle(args.path, args, stderr)
    md = bundle.metadata
    stdout.write(f'{args.path}\nsha256 {digest}\n')
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
