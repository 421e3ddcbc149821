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

"""``watcher-failpredict evaluate``: migration policies in the NFV testbed.

It evaluates policies, not a model: the real strategy with different
ranking models, the baselines and an oracle, run on a simulated cluster
(doc/source/testbed.rst). ``compare-models`` is the command that scores
models on held-out data.
"""

from watcher_failpredict.cmd import common
from watcher_failpredict.testbed import report
from watcher_failpredict.testbed import scenario as tb_scenario


def add_parser(subparsers):
    e = subparsers.add_parser(
        'evaluate', allow_abbrev=False,
        formatter_class=common.HelpFormatter,
        help='evaluate migration policies in the simulated NFV testbed '
             '(every policy on a scenario; QoS table)',
        description='Simulate the NFV testbed (doc/source/testbed.rst): '
                    'train the model on the scenario\'s training stretch, '
                    'run each policy (the real predicted_least_failure '
                    'strategy with different ranking models, no-mig, '
                    'the look-ahead oracle) on the test stretch, print the '
                    'QoS table (headline: mean response time over all '
                    'requests, timeouts at the timeout).')
    e.add_argument('--scenario', default='paper', metavar='NAME|FILE',
                   help='built-in scenario (%s) or a YAML file (default: '
                        'paper)' % ', '.join(tb_scenario.builtin_names()))
    e.add_argument('--policies', default=None, metavar='P1,P2',
                   help='comma-separated policies (default: all of no-mig, '
                        'random, least-cpu, least-cpu-wb, mean-kstd, trend, '
                        'seasonal, least-cpu-gated, seasonal-gated, '
                        'proposed, proposed-proactive, proposed-cycle, '
                        'oracle-peak, '
                        'perfect-model, perfect-model-stay, '
                        'perfect-model-proactive, '
                        'lookahead-persistence, lookahead-seasonal, '
                        'planner-seasonal, planner-perfect, '
                        'proposed-planned, '
                        'proposed-reactive, proposed-reactive-starved, '
                        'oracle-reactive, oracle)')
    e.add_argument('--influxdb', metavar='URL', type=common.influxdb_url,
                   help='write the testbed\'s metrics into this InfluxDB '
                        '1.x (collectd schema, one database per policy and '
                        'seed) and let the strategies read them through '
                        'InfluxDBDataSource (default: in memory; no '
                        'user:password@, see --username)')
    common.add_influxdb_credentials(e)
    e.add_argument('--prometheus', metavar='URL', type=common.prometheus_url,
                   help='instead of --influxdb: write the testbed\'s '
                        'metrics into this Prometheus through its '
                        'remote-write receiver (start it with '
                        '--web.enable-remote-write-receiver; node_exporter '
                        'and libvirt exporter series, host and instance '
                        'labels NAME_<scenario>_<policy>_<seed>_host / '
                        '_uuid per run) and let the strategies read them '
                        'through PrometheusDataSource')
    e.add_argument('--database-prefix', default='failpredict_testbed',
                   metavar='NAME',
                   help='with --influxdb: databases are named '
                        'NAME_<scenario>_<policy>_<seed>; each is dropped '
                        'and created anew; with --prometheus: the runs\' '
                        'label names start with it (default: '
                        'failpredict_testbed)')
    e.add_argument('--seeds', type=common.positive_int, default=1,
                   help='repeat with this many seeds and report means with '
                        '95 %% confidence intervals (default: 1)')
    e.add_argument('--jobs', type=common.positive_int, default=1,
                   help='run this many seeds at once, each in its own '
                        'process (same figures; default: 1)')
    e.add_argument('--stretch', choices=('test', 'validation'),
                   default='test',
                   help='test: train on the training stretch, run the '
                        'policies on the test stretch. validation (the '
                        'development protocol): train on the first 2/3 of '
                        'the training stretch and run the policies on the '
                        'rest; the test stretch is never simulated '
                        '(default: test)')
    e.add_argument('--traces', metavar='DIR',
                   help='traces directory for the scenario\'s traces: files '
                        '(default: $FAILPREDICT_TRACES, else '
                        '$XDG_CACHE_HOME/watcher-failpredict/traces)')
    e.add_argument('--json', metavar='FILE', help='write the results here')
    e.add_argument('--plots', metavar='DIR', help='write PNG plots here')


def run(args, stdout, stderr):
    # Imported here, not at the top: the policies load Watcher's strategy
    # machinery, which would double the start-up of every command
    # (``watcher-failpredict --help`` measured 1.8 s, 3.7 s with these two
    # imports at the top).
    from watcher_failpredict.testbed import policies
    from watcher_failpredict.testbed import runner
    if args.influxdb and args.prometheus:
        raise common.UsageError('evaluate: --prometheus excludes --influxdb')
    scn = tb_scenario.load(args.scenario, args.traces)
    names = list(policies.POLICIES)
    if args.policies:
        names = [p.strip() for p in args.policies.split(',') if p.strip()]
        unknown = [p for p in names if p not in policies.POLICIES]
        if unknown or not names:
            raise common.CommandError(
                f'--policies: unknown {unknown or "(none)"}; known: '
                f'{", ".join(policies.POLICIES)}')
    bar = common.ProgressBar(f'evaluate {scn["name"]}', 1, stderr)
    last = [-1]

    def progress(done, total, note):
        bar.total = max(int(total), 1)
        if done != last[0]:
            last[0] = done
            bar.update(done, note)

    influx = ({'url': args.influxdb, 'prefix': args.database_prefix,
               'username': args.username,
               'password': common.read_password(args.password_file)}
              if args.influxdb else None)
    if args.prometheus:
        influx = {'backend': 'prometheus', 'url': args.prometheus,
                  'prefix': args.database_prefix}
    result = runner.evaluate(scn, names, args.seeds, progress, influx,
                             args.stretch, args.jobs)
    stdout.write(f'scenario {scn["name"]}: {scn["description"]}\n')
    if args.stretch == 'validation':
        stdout.write('VALIDATION stretch: model fitted on the first part of '
                     'the training stretch, policies run on its rest (the '
                     'test stretch was not simulated)\n')
    for ev in result['evaluations']:
        m, b = ev['model'], ev['baseline_persistence']
        stdout.write(f'model (training stretch, held-out part): ROC AUC '
                     f'{m["roc_auc"]:.3f} vs persistence '
                     f'{b["roc_auc"]:.3f}\n')
    stdout.write(report.table(result['aggregate'], args.seeds) + '\n')
    if args.json:
        report.write_json(args.json, scn, result['aggregate'],
                          result['per_seed'], result['evaluations'],
                          args.stretch)
        stdout.write(f'results written to {args.json}\n')
    if args.plots:
        for path in report.plot(result['runs'], args.plots, scn['name']):
            stdout.write(f'plot: {path}\n')
    return 0
