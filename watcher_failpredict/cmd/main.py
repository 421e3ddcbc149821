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

"""The ``watcher-failpredict`` console script: parser assembly and dispatch.

Each command is a module of this package exposing ``add_parser(subparsers)``
(adds its sub-parser, with any aliases) and ``run(args, stdout, stderr)``
(does the work, returns the exit status); ``args.command`` is the name the
user typed, so a command can tell a deprecated alias from its name. A
``run()`` raises :class:`common.CommandError` for a one-line error and
:class:`common.UsageError` for options that parse but do not go together
(usage and message, as argparse prints); both exit with status 2. Adding a
command is one line in :data:`COMMANDS`.

``train`` fits a model bundle on InfluxDB (or trace) history and prints the
``[failpredict]`` lines to paste into ``watcher.conf``; ``show-model PATH``
prints what a bundle holds; ``compare-models`` (formerly ``report``) scores
a bundle against other model kinds and the baselines on held-out data;
``evaluate`` runs migration policies in the simulated NFV testbed.

Passwords never go on the command line (where ``ps`` and shell histories
would show them): use ``--password-file`` or the environment variable
``FAILPREDICT_INFLUXDB_PASSWORD``. Errors print one line on stderr and exit
with status 2. Ctrl-C, at any time from the imports on, prints one line and
exits with status 130; SIGTERM unwinds the same way (so an atomic write in
progress removes its temporary file) and exits with status 143.
"""

import argparse
import logging
import signal
import sys

_INTERRUPTED = 'watcher-failpredict: interrupted\n'

try:
    # scikit-learn, NumPy and Watcher take seconds to import: a Ctrl-C
    # meanwhile, before main() runs, is still one line and no traceback
    from watcher_failpredict.cmd import common
    from watcher_failpredict.cmd import compare_models
    from watcher_failpredict.cmd import evaluate
    from watcher_failpredict.cmd import show_model
    from watcher_failpredict.cmd import traces
    from watcher_failpredict.cmd import train
    from watcher_failpredict.datasources import windows as metric_windows
    from watcher_failpredict.prediction import bundle as bundle_mod
except KeyboardInterrupt:
    sys.stderr.write(_INTERRUPTED)
    sys.exit(130)

# The commands, in the order ``--help`` lists them.
COMMANDS = (train, compare_models, show_model, evaluate, traces)


def build_parser():
    # allow_abbrev=False: otherwise "--password X" would be taken as
    # --password-file and a secret typed on the command line accepted.
    parser = argparse.ArgumentParser(
        prog=common.PROG, allow_abbrev=False,
        description='Train and inspect watcher-failpredict '
                    'failure-prediction models.')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
    subparsers.required = True
    for command in COMMANDS:
        known = set(subparsers.choices)
        command.add_parser(subparsers)
        # every name the module added (its aliases too) runs its run()
        for name in set(subparsers.choices) - known:
            subparsers.choices[name].set_defaults(run=command.run)
    return parser


class Terminated(BaseException):
    """SIGTERM, raised where the program is (like KeyboardInterrupt, not
    an Exception, so no error handler takes it for a failure) so that
    every ``finally`` and cleanup on the way out runs.
    """


def _raise_terminated(signum, frame):
    raise Terminated()


def main(argv=None, stdout=None, stderr=None):
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return _main(argv, stdout, stderr)
    except KeyboardInterrupt:
        stderr.write(_INTERRUPTED)
        return 130
    except Terminated:
        stderr.write(f'{common.PROG}: terminated\n')
        return 128 + signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv, stdout, stderr):
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR,
                        format=f'{common.PROG}: %(levelname)s %(message)s')
    try:
        return args.run(args, stdout, stderr)
    except common.UsageError as exc:
        parser.error(str(exc))
    except (common.CommandError, ValueError, bundle_mod.ModelError,
            metric_windows.MetricsUnavailable, OSError) as exc:
        stderr.write(f'{common.PROG}: error: {exc}\n')
        return 2


if __name__ == '__main__':
    sys.exit(main())
