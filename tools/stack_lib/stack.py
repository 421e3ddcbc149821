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

"""tools/stack: the whole Watcher + failpredict deployment on one machine.

``up`` / ``status`` / ``down`` (idempotent), plus ``stress on|off``,
``load NODE JSON``, ``backfill``, ``model PATH``. Everything listens on
127.0.0.1 only; every log, pid file, config and data file lives in one
folder (``$FAILPREDICT_STACK_DIR``, default ``/tmp/failpredict-stack``);
``down`` stops only the processes whose pid files this tool wrote (each
started in its own session, stopped as that process group, after checking
the pid still is the process started, by its start time).

See doc/source/stack.rst.
"""

import argparse
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from stack_lib import scenario
from watcher_failpredict.datasources.influxdb import client as influx_client

#: This folder: collectd's exec plugin runs loadmodel.py from it.
HERE = os.path.dirname(os.path.abspath(__file__))
#: The checkout (its .venv is the default --venv).
ROOT = os.path.dirname(os.path.dirname(HERE))

DEFAULT_DIR = '/tmp/failpredict-stack'
#: stress-ng workers per vCPU of the real node (stress()).
STARVING_WORKERS_PER_VCPU = 2
APT_PACKAGES = {  # executable -> Debian package
    '/usr/bin/influxd': 'influxdb',
    '/usr/sbin/collectd': 'collectd',
    '/usr/lib/rabbitmq/bin/rabbitmq-server': 'rabbitmq-server',
    '/usr/bin/stress-ng': 'stress-ng',
    # Watcher's database. SQLite is not enough for the multi-process
    # services: the decision engine's continuous-audit launcher and the
    # audit it has just scheduled write the same row from two threads, and
    # SQLite refuses one of them ("database is locked") however long the
    # busy timeout, failing the CONTINUOUS audit at its first run.
    '/usr/sbin/mariadbd': 'mariadb-server',
    '/usr/bin/mariadb': 'mariadb-client',
}
PORT_NAMES = ('influx_http', 'influx_rpc', 'influx_collectd', 'mysql',
              'epmd', 'amqp', 'rabbit_dist', 'nova', 'placement', 'api')
PREFERRED = {'api': 9322, 'influx_http': 8086, 'influx_collectd': 25826}
DATABASE = 'collectd'
INTERVAL = 10


def log(msg):
    print('stack: %s' % msg, flush=True)


class StackError(Exception):
    pass


# -- small helpers ------------------------------------------------------------


def port_free(port, udp=False):
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        # As the servers do: a port in TIME_WAIT after "down" is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(('127.0.0.1', port))
        except OSError:
            return False
    return True


def free_port(taken):
    while True:
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
        if port not in taken and port_free(port, udp=True):
            return port


def http_get(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def wait_for(what, check, timeout, proc=None):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        if proc is not None and not proc.alive():
            raise StackError('%s exited during start-up; see %s'
                             % (what, proc.log))
        try:
            if check():
                return
        except Exception as exc:  # noqa: BLE001 - report the last one
            last = exc
        time.sleep(0.3)
    raise StackError('%s not ready after %s s (%s); see its log'
                     % (what, timeout, last))


def write_atomic(path, text, mode=0o644):
    """Replace ``path`` with ``text``; True when the content changed."""
    try:
        with open(path) as f:
            if f.read() == text:
                return False
    except FileNotFoundError:
        pass
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


def sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


# -- processes ----------------------------------------------------------------


def _start_time(pid):
    """Field 22 of /proc/PID/stat: identifies this pid's process."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[19]
    except OSError:
        return None


class Proc:
    """A process this tool started: pid file ``run/NAME.pid``."""

    def __init__(self, stack, name):
        self.stack = stack
        self.name = name
        self.pidfile = os.path.join(stack.dir, 'run', name + '.pid')
        self.log = os.path.join(stack.dir, 'log', name + '.log')

    def pid(self):
        try:
            with open(self.pidfile) as f:
                pid, started = f.read().split()
            pid = int(pid)
        except (OSError, ValueError):
            return None
        return pid if _start_time(pid) == started else None

    def alive(self):
        return self.pid() is not None

    def start(self, argv, env=None, cwd=None):
        if self.alive():
            return False
        full_env = dict(os.environ)
        full_env.update(env or {})
        with open(self.log, 'ab') as out:
            p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, env=full_env,
                                 cwd=cwd or self.stack.dir,
                                 start_new_session=True)
        write_atomic(self.pidfile, '%d %s\n' % (p.pid, _start_time(p.pid)))
        return True

    def stop(self, timeout=15):
        pid = self.pid()
        if pid is None:
            _unlink(self.pidfile)
            return False
        # The process group of the session it leads (its children too).
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.time() + wait
            while time.time() < deadline and _group_alive(pid):
                time.sleep(0.1)
            if not _group_alive(pid):
                break
        _unlink(self.pidfile)
        return True


def stop_all(procs, timeout=15):
    """SIGTERM every group at once, wait, SIGKILL what is left."""
    live = [(p, p.pid()) for p in procs]
    live = [(p, pid) for p, pid in live if pid is not None]
    for p in procs:
        if p.pid() is None:
            _unlink(p.pidfile)
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
        left = [pid for _p, pid in live if _group_alive(pid)]
        if not left:
            break
        for pid in left:
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + wait
        while time.time() < deadline and any(
                _group_alive(pid) for _p, pid in live):
            time.sleep(0.1)
    for p, _pid in live:
        _unlink(p.pidfile)
    return [p for p, _pid in live]


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie leader (reaped by nobody, as we are not its parent any more)
    # still counts; look for any member that is not a zombie.
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != 'Z':
            return True
    return False


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# -- the stack ----------------------------------------------------------------


class Stack:
    def __init__(self, directory, venv):
        self.dir = os.path.abspath(directory)
        self.venv = os.path.abspath(venv)
        self.py = os.path.join(self.venv, 'bin', 'python')
        self.ports = {}

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def bin(self, name):
        return os.path.join(self.venv, 'bin', name)

    # state ------------------------------------------------------------------

    def node_names(self):
        return [n['hostname'] for n in self.topology()['compute_nodes']]

    def topology(self):
        with open(self.path('topology.json')) as f:
            return json.load(f)

    def load_spec(self):
        with open(self.path('load.json')) as f:
            return json.load(f)

    def save_load_spec(self, spec):
        write_atomic(self.path('load.json'), json.dumps(spec, indent=1))

    def processes(self):
        names = ['influxd', 'mariadb']
        names += ['collectd-%s' % n for n in self.node_names()]
        names += ['collectd-vnf-guests', 'epmd', 'rabbitmq', 'nova-emulator',
                  'placement-emulator', 'watcher-decision-engine',
                  'watcher-applier', 'watcher-api', 'stress-ng']
        return [Proc(self, n) for n in names]

    def proc(self, name):
        return Proc(self, name)

    def url(self, port_name, path=''):
        return 'http://127.0.0.1:%d%s' % (self.ports[port_name], path)

    def load_ports(self):
        try:
            with open(self.path('ports.json')) as f:
                self.ports = json.load(f)
        except FileNotFoundError:
            self.ports = {}
        return self.ports

    def prepare(self):
        for sub in ('run', 'log', 'etc', 'influxdb', 'collectd', 'rabbitmq',
                    'mariadb'):
            os.makedirs(self.path(sub), exist_ok=True)
        if not os.path.exists(self.db_password_file()):
            write_atomic(self.db_password_file(), secrets.token_hex(16),
                         mode=0o600)
        # collectd's exec plugin runs the load model as 'nobody'.
        os.chmod(self.dir, 0o755)
        if not os.path.exists(self.path('topology.json')):
            write_atomic(self.path('topology.json'),
                         json.dumps(scenario.topology(), indent=1))
        if not os.path.exists(self.path('load.json')):
            self.save_load_spec(scenario.initial_load(time.time()))
        self.load_ports()
        running = any(p.alive() for p in self.processes())
        changed = False
        for name in PORT_NAMES:
            port = self.ports.get(name)
            if port and (running or (port_free(port)
                                     and port_free(port, udp=True))):
                continue
            pref = PREFERRED.get(name)
            taken = set(self.ports.values())
            if pref and pref not in taken and port_free(pref) \
                    and port_free(pref, udp=True):
                self.ports[name] = pref
            else:
                self.ports[name] = free_port(taken)
            changed = True
        if changed:
            write_atomic(self.path('ports.json'),
                         json.dumps(self.ports, indent=1))

    # packages ----------------------------------------------------------------

    def install_packages(self):
        missing = sorted({pkg for exe, pkg in APT_PACKAGES.items()
                          if not os.path.exists(exe)})
        if not missing:
            return
        log('installing Debian packages: %s' % ' '.join(missing))
        env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
        with open(self.path('log', 'apt.log'), 'ab') as out:
            for argv in (['apt-get', 'update', '-qq'],
                         ['apt-get', 'install', '-y', '-qq',
                          '--no-install-recommends'] + missing):
                subprocess.run(argv, check=True, env=env, stdout=out,
                               stderr=subprocess.STDOUT)
        # Debian starts rabbitmq-server/epmd on install where policy allows;
        # this stack runs its own on 127.0.0.1 and never touches those.

    # configs -----------------------------------------------------------------

    def influxdb_conf(self):
        d = self.path('influxdb')
        return f"""\
reporting-disabled = true
bind-address = "127.0.0.1:{self.ports['influx_rpc']}"

[meta]
  dir = "{d}/meta"
  logging-enabled = false

[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{self.ports['influx_http']}"
  auth-enabled = false
  log-enabled = false
  pprof-enabled = false
  https-enabled = false
  unix-socket-enabled = false

[logging]
  level = "info"
  suppress-logo = true

# etc/influxdb/collectd-input.conf, on this stack's port.
[[collectd]]
  enabled = true
  bind-address = "127.0.0.1:{self.ports['influx_collectd']}"
  database = "{DATABASE}"
  typesdb = "/usr/share/collectd/types.db"
  security-level = "none"
  batch-timeout = "1s"
"""

    def collectd_conf(self, agent, real):
        base = self.path('collectd', agent)
        os.makedirs(base, exist_ok=True)
        head = f"""\
# collectd agent '{agent}' of the failpredict stack (tools/stack).
Hostname "{agent}"
FQDNLookup false
Interval {INTERVAL}
BaseDir "{base}"
PIDFile "{base}/collectd.pid"
TypesDB "/usr/share/collectd/types.db"

LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File STDOUT
  Timestamp true
</Plugin>
LoadPlugin network
<Plugin network>
  <Server "127.0.0.1" "{self.ports['influx_collectd']}">
    # The sending socket too: bound to 127.0.0.1, not 0.0.0.0.
    BindAddress "127.0.0.1"
  </Server>
</Plugin>
"""
        if real:
            # etc/collectd/compute-host.conf: this machine, as it is.
            return head + """
LoadPlugin cpu
LoadPlugin memory
LoadPlugin load
LoadPlugin disk
LoadPlugin interface
<Plugin cpu>
  ReportByCpu false
  ReportByState true
  ValuesPercentage true
</Plugin>
<Plugin memory>
  ValuesAbsolute true
  ValuesPercentage true
</Plugin>
<Plugin interface>
  Interface "lo"
  IgnoreSelected true
</Plugin>
"""
        args = (['--guests'] if agent == 'vnf-guests'
                else ['--node', agent])
        argv = ' '.join('"%s"' % a for a in (
            ['/usr/bin/python3', os.path.join(HERE, 'loadmodel.py'),
             '--stack-dir', self.dir, '--interval', str(INTERVAL)] + args))
        return head + f"""
# Emulated node: its values come from tools/stack_lib/loadmodel.py (PUTVAL
# with the cpu/memory/load/disk/interface plugins' identifiers).
LoadPlugin exec
<Plugin exec>
  Exec "nobody" {argv}
</Plugin>
"""

    def watcher_conf(self):
        load = self.load_spec()
        model = self.path('model.joblib')
        model_lines = ''
        if os.path.exists(model):
            model_lines = 'model_path = %s\nmodel_sha256 = %s\n' % (
                model, sha256(model))
        p = self.ports
        db_url = ('mysql+pymysql://watcher:%s@127.0.0.1:%d/watcher'
                  '?charset=utf8mb4' % (self.db_password(), p['mysql']))
        return f"""\
# Written by tools/stack; rewritten on every 'up' and 'model'.
[DEFAULT]
transport_url = rabbit://guest:guest@127.0.0.1:{p['amqp']}/
host = failpredict-stack
debug = false
# Let "down" and a restart be quick.
graceful_shutdown_timeout = 5
# No Keystone on this stack: the API trusts every caller (policy file).
enable_authentication = false

[api]
host = 127.0.0.1
port = {p['api']}

[database]
connection = {db_url}

[oslo_policy]
policy_file = {self.path('etc', 'policy.json')}
enforce_scope = false
enforce_new_defaults = false

[nova]
auth_type = none
endpoint_override = http://127.0.0.1:{p['nova']}/v2.1

[placement]
auth_type = none
endpoint_override = http://127.0.0.1:{p['placement']}

[collector]
collector_plugins = compute

[watcher_cluster_data_model_collectors.compute]
# Short, so that audits see the emulators' state after a migration.
period = 10

[watcher_decision_engine]
continuous_audit_interval = 5

[failpredict]
influxdb_url = http://127.0.0.1:{p['influx_http']}
influxdb_database = {DATABASE}
cpu_form = percent
instance_metrics = guest
{model_lines}# real node: {load.get('real_node')}
"""

    def write_configs(self):
        """Write every config; stop the running processes whose changed.

        ``up`` then starts them again: re-running ``up`` after an edit of
        this tool (or a new model) applies it, and is a no-op otherwise.
        """
        stale = []
        if write_atomic(self.path('etc', 'influxdb.conf'),
                        self.influxdb_conf()):
            stale.append('influxd')
        load = self.load_spec()
        for node in self.node_names():
            if write_atomic(self.path('etc', 'collectd-%s.conf' % node),
                            self.collectd_conf(
                                node, node == load.get('real_node'))):
                stale.append('collectd-%s' % node)
        if write_atomic(self.path('etc', 'collectd-vnf-guests.conf'),
                        self.collectd_conf('vnf-guests', False)):
            stale.append('collectd-vnf-guests')
        watcher = write_atomic(self.path('etc', 'policy.json'), json.dumps(
            {'admin_api': '@', 'default': 'rule:admin_api'}, indent=1))
        # 0600: it holds the database password.
        watcher |= write_atomic(self.path('etc', 'watcher.conf'),
                                self.watcher_conf(), mode=0o600)
        if watcher:
            stale += ['watcher-api', 'watcher-applier',
                      'watcher-decision-engine']
        for p in stop_all([self.proc(name) for name in stale]):
            log('stopped %s: its configuration changed' % p.name)
        rb = self.path('rabbitmq')
        rabbit_conf = '\n'.join([
            'listeners.tcp.1 = 127.0.0.1:%d' % self.ports['amqp'],
            'loopback_users.guest = true',
            'log.console = false',
            'log.file.level = info',
            ''])
        if write_atomic(self.path('etc', 'rabbitmq.conf'), rabbit_conf):
            if self.proc('rabbitmq').stop():
                log('stopped rabbitmq: its configuration changed')
        write_atomic(os.path.join(rb, 'enabled_plugins'), '[].\n')
        write_atomic(os.path.join(rb, 'rabbitmq-env.conf'), '')

    # services ----------------------------------------------------------------

    def rabbit_env(self):
        rb = self.path('rabbitmq')
        return {
            'HOME': rb,   # its Erlang cookie lives here, not in /root
            'RABBITMQ_NODENAME': 'failpredict-%d@localhost'
                                 % self.ports['amqp'],
            'RABBITMQ_NODE_IP_ADDRESS': '127.0.0.1',
            'RABBITMQ_NODE_PORT': str(self.ports['amqp']),
            'RABBITMQ_DIST_PORT': str(self.ports['rabbit_dist']),
            'RABBITMQ_CONFIG_FILE': self.path('etc', 'rabbitmq.conf'),
            'RABBITMQ_CONF_ENV_FILE': os.path.join(rb, 'rabbitmq-env.conf'),
            'RABBITMQ_ENABLED_PLUGINS_FILE': os.path.join(rb,
                                                          'enabled_plugins'),
            'RABBITMQ_MNESIA_BASE': os.path.join(rb, 'mnesia'),
            'RABBITMQ_LOG_BASE': self.path('log', 'rabbitmq.d'),
            'RABBITMQ_PID_FILE': os.path.join(rb, 'rabbitmq.pid'),
            'RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS':
                '-kernel inet_dist_use_interface {127,0,0,1}',
            'ERL_EPMD_ADDRESS': '127.0.0.1',
            'ERL_EPMD_PORT': str(self.ports['epmd']),
        }

    def start_influxdb(self):
        p = self.proc('influxd')
        p.start(['/usr/bin/influxd', '-config',
                 self.path('etc', 'influxdb.conf')])
        influx = self.influx_client()
        wait_for('influxd', influx.answers_ping, 30, p)
        influx.create_database(DATABASE)

    def influx_client(self):
        """A client of the stack's influxd, writing to its database."""
        return influx_client.InfluxDBClient(self.url('influx_http'),
                                            database=DATABASE, timeout=10)

    def start_collectd(self):
        for agent in self.node_names() + ['vnf-guests']:
            self.proc('collectd-%s' % agent).start(
                ['/usr/sbin/collectd', '-f', '-C',
                 self.path('etc', 'collectd-%s.conf' % agent)])

    def start_rabbitmq(self):
        env = self.rabbit_env()
        ep = self.proc('epmd')
        ep.start(['/usr/bin/epmd', '-address', '127.0.0.1', '-port',
                  str(self.ports['epmd'])], env=env)
        wait_for('epmd', lambda: not port_free(self.ports['epmd']), 10, ep)
        rb = self.proc('rabbitmq')
        rb.start(['/usr/lib/rabbitmq/bin/rabbitmq-server'], env=env)
        wait_for('rabbitmq', lambda: socket.create_connection(
            ('127.0.0.1', self.ports['amqp']), 1).close() is None, 90, rb)

    def start_emulators(self):
        topo = self.path('topology.json')
        for name, module, port in (
                ('nova-emulator', 'nova_api_emulator', 'nova'),
                ('placement-emulator', 'placement_api_emulator',
                 'placement')):
            p = self.proc(name)
            p.start([self.py, '-m', 'watcher.tests.local_fixtures.' + module,
                     '--model', topo, '--host', '127.0.0.1',
                     '--port', str(self.ports[port])])
        wait_for('nova emulator', lambda: http_get(
            self.url('nova', '/v2.1/os-hypervisors/detail'))[0] == 200, 30,
            self.proc('nova-emulator'))
        wait_for('placement emulator', lambda: http_get(
            self.url('placement', '/'))[0] == 200, 30,
            self.proc('placement-emulator'))

    def db_password_file(self):
        return self.path('etc', 'mariadb-watcher.password')

    def db_password(self):
        with open(self.db_password_file()) as f:
            return f.read().strip()

    def mariadb_sql(self, sql):
        """Run ``sql`` as MariaDB's root over the stack's unix socket.

        The statements go on the client's stdin, never its command line,
        where ps would show a password.
        """
        out = subprocess.run(
            ['/usr/bin/mariadb', '--no-defaults', '--batch',
             '--skip-column-names', '-S', self.path('mariadb', 'mysqld.sock'),
             '-u', 'root'],
            input=sql, capture_output=True, text=True)
        if out.returncode:
            raise StackError('mariadb: %s' % out.stderr.strip())
        return out.stdout

    def start_mariadb(self):
        data = self.path('mariadb', 'data')
        if not os.path.isdir(os.path.join(data, 'mysql')):
            with open(self.path('log', 'mariadb-install-db.log'), 'ab') as o:
                subprocess.run(
                    ['/usr/bin/mariadb-install-db', '--no-defaults',
                     '--datadir=' + data, '--user=root',
                     '--auth-root-authentication-method=socket',
                     '--skip-test-db'],
                    check=True, stdout=o, stderr=subprocess.STDOUT)
        p = self.proc('mariadb')
        p.start(['/usr/sbin/mariadbd', '--no-defaults', '--user=root',
                 '--datadir=' + data,
                 '--socket=' + self.path('mariadb', 'mysqld.sock'),
                 '--pid-file=' + self.path('mariadb', 'mysqld.pid'),
                 '--bind-address=127.0.0.1',
                 '--port=%d' % self.ports['mysql'],
                 '--skip-name-resolve', '--innodb-buffer-pool-size=32M',
                 '--character-set-server=utf8mb4'])
        wait_for('mariadb', lambda: self.mariadb_sql('SELECT 1') is not None,
                 60, p)
        self.mariadb_sql(
            "CREATE DATABASE IF NOT EXISTS watcher CHARACTER SET utf8mb4;\n"
            "CREATE USER IF NOT EXISTS 'watcher'@'127.0.0.1';\n"
            "ALTER USER 'watcher'@'127.0.0.1' IDENTIFIED BY '%s';\n"
            "GRANT ALL PRIVILEGES ON watcher.* TO 'watcher'@'127.0.0.1';\n"
            % self.db_password())

    def create_schema(self):
        tables = self.mariadb_sql(
            "SELECT COUNT(*) FROM information_schema.tables "
            "WHERE table_schema = 'watcher'").strip()
        if tables == '0':
            with open(self.path('log', 'watcher-db-manage.log'), 'ab') as o:
                subprocess.run([self.bin('watcher-db-manage'), '--config-file',
                                self.path('etc', 'watcher.conf'),
                                'create_schema'], check=True, stdout=o,
                               stderr=subprocess.STDOUT)

    def start_watcher(self):
        conf = self.path('etc', 'watcher.conf')
        for name in ('watcher-decision-engine', 'watcher-applier'):
            self.proc(name).start([self.bin(name), '--config-file', conf,
                                   '--log-file', self.path('log',
                                                           name + '.log')])
        self.proc('watcher-api').start(
            [self.bin('watcher-api-wsgi'), '--host', '127.0.0.1',
             '--port', str(self.ports['api']), '--', '--config-file', conf])

        def goal_synced():
            _, body = http_get(self.url('api', '/v1/goals'))
            return any(g['name'] == 'failure_mitigation'
                       for g in json.loads(body)['goals'])
        wait_for('watcher-api + decision-engine goal sync', goal_synced, 90,
                 self.proc('watcher-api'))

    # commands ----------------------------------------------------------------

    def up(self):
        t0 = time.time()
        os.makedirs(self.dir, exist_ok=True)
        self.install_packages()
        self.prepare()
        self.write_configs()
        steps = (('influxdb', self.start_influxdb),
                 ('mariadb', self.start_mariadb),
                 ('collectd agents', self.start_collectd),
                 ('rabbitmq', self.start_rabbitmq),
                 ('nova/placement emulators', self.start_emulators),
                 ('watcher db schema', self.create_schema),
                 ('watcher services', self.start_watcher))
        for what, step in steps:
            t = time.time()
            step()
            log('%-26s ready in %5.1f s' % (what, time.time() - t))
        state = self.state()
        state.setdefault('collect_start', t0)
        state['last_up_seconds'] = round(time.time() - t0, 1)
        write_atomic(self.path('state.json'), json.dumps(state, indent=1))
        self.check_loopback()
        log('up in %.1f s; stack folder %s' % (time.time() - t0, self.dir))
        log('export OS_AUTH_TYPE=none OS_ENDPOINT=%s'
            % self.url('api'))

    def state(self):
        try:
            with open(self.path('state.json')) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def down(self):
        if not os.path.isdir(self.path('run')):
            log('nothing to stop in %s' % self.dir)
            return
        # Watcher's services first (they talk to the rest), then the rest.
        procs = list(reversed(self.processes()))
        watcher = [p for p in procs if p.name.startswith('watcher-')]
        for group in (watcher, [p for p in procs if p not in watcher]):
            for p in stop_all(group):
                log('stopped %s' % p.name)
        state = self.state()
        state.pop('collect_start', None)
        if os.path.exists(self.path('state.json')):
            write_atomic(self.path('state.json'), json.dumps(state))
        log('down; logs and data stay in %s' % self.dir)

    def status(self):
        self.load_ports()
        rows, ok = [], True
        for p in self.processes():
            pid = p.pid()
            if pid is None and p.name == 'stress-ng':
                rows.append((p.name, '-', 'off'))
                continue
            ok = ok and pid is not None
            rows.append((p.name, pid or '-', 'running' if pid else 'STOPPED'))
        for name, pid, st in rows:
            print('%-28s %-8s %s' % (name, pid, st))
        for name in sorted(self.ports):
            print('port %-18s 127.0.0.1:%d' % (name, self.ports[name]))
        return ok

    def check_loopback(self):
        """Every TCP/UDP socket our processes bound is on loopback.

        127.0.0.1, except epmd: given ``-address 127.0.0.1`` it implicitly
        adds the IPv6 loopback ``[::1]`` as well (epmd(1)), which is
        loopback too and is accepted here, by name.
        """
        pids = set()
        for p in self.processes():
            pid = p.pid()
            if pid is not None:
                pids |= _group_pids(pid)
        bad = []
        for line in subprocess.run(
                ['ss', '-H', '-tulnp'], capture_output=True,
                text=True).stdout.splitlines():
            for pid in pids:
                if 'pid=%d,' % pid in line:
                    local = line.split()[4]
                    if not (local.startswith('127.0.0.1:')
                            or (local.startswith('[::1]:')
                                and '"epmd"' in line)):
                        bad.append(line)
        if bad:
            raise StackError('listeners not on 127.0.0.1:\n' + '\n'.join(bad))
        log('every listener of the stack is on 127.0.0.1')

    def stress(self, on):
        p = self.proc('stress-ng')
        if not on:
            log('stress-ng stopped' if p.stop() else 'stress-ng was off')
            return
        n = os.cpu_count() or 1
        # nice 19: the real node reports ~100 % CPU (nice counts as used),
        # while the stack's own services keep their share of the CPUs.
        # Twice as many workers as the node's vCPUs in Watcher's model: its
        # load average (runnable demand) then says its consumers get about
        # half the CPU they ask for, so the strategy's whether-to-move rule
        # (move_rule) relieves it, as it would a real saturated host of
        # that size.
        workers = max(n, STARVING_WORKERS_PER_VCPU * scenario.NODE_VCPUS)
        started = p.start(['nice', '-n', '19', '/usr/bin/stress-ng',
                           '--cpu', str(workers),
                           '--taskset', '0-%d' % (n - 1),
                           '--cpu-method', 'ackermann', '--timeout', '3600'])
        log('stress-ng: %d workers on %d CPUs (node %s)%s'
            % (workers, n, self.load_spec()['real_node'],
               '' if started else ' already running'))

    def set_load(self, node, spec):
        load = self.load_spec()
        if node in load['instances']:
            load['instances'][node].update(spec)
        elif node in load['nodes']:
            if node == load['real_node']:
                raise StackError('%s is the real node: use "stress on|off"'
                                 % node)
            scenario_cpu_check(spec)
            load['nodes'][node] = spec
        else:
            raise StackError('unknown node or instance uuid %r; nodes: %s'
                             % (node, ', '.join(load['nodes'])))
        self.save_load_spec(load)
        log('%s load: %s' % (node, json.dumps(spec)))

    def backfill(self, seconds, seed):
        """Synthetic collectd history before the live data, same names."""
        from stack_lib import backfill
        end = int(self.state().get('collect_start') or time.time())
        end = end // INTERVAL * INTERVAL - INTERVAL
        n = backfill.backfill(self, end - seconds, end, seed)
        log('backfilled %d points, %s .. %s (before live collection)'
            % (n, end - seconds, end))

    def model(self, path):
        self.load_ports()
        dst = self.path('model.joblib')
        if os.path.abspath(path) != dst:
            shutil.copyfile(path, dst + '.tmp')
            os.replace(dst + '.tmp', dst)
        log('model %s sha256 %s' % (dst, sha256(dst)))
        self.write_configs()       # restarts the Watcher services
        self.start_watcher()


def scenario_cpu_check(spec):
    from stack_lib import loadmodel
    loadmodel.spec_cpu(spec, time.time())   # raises on a bad spec


def _group_pids(pgid):
    out = set()
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open('/proc/%s/stat' % entry) as f:
                    if int(f.read().rsplit(')', 1)[1].split()[2]) == pgid:
                        out.add(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return out


def main(argv=None):
    p = argparse.ArgumentParser(prog='tools/stack', description=(
        'Watcher + watcher-failpredict, InfluxDB, collectd and RabbitMQ on '
        'one machine, on 127.0.0.1 only (doc/source/stack.rst).'))
    p.add_argument('--dir', default=os.environ.get('FAILPREDICT_STACK_DIR',
                                                   DEFAULT_DIR))
    p.add_argument('--venv', default=os.environ.get(
        'VENV', os.path.join(ROOT, '.venv')))
    sub = p.add_subparsers(dest='cmd', required=True)
    sub.add_parser('up', help='start everything (idempotent)')
    sub.add_parser('status', help='processes and ports; exit 1 if any down')
    sub.add_parser('down', help='stop what "up" started')
    s = sub.add_parser('stress', help='saturate the real node (stress-ng)')
    s.add_argument('state', choices=('on', 'off'))
    s = sub.add_parser('load', help='set an emulated node\'s load spec or '
                       'an instance\'s load (JSON)')
    s.add_argument('node')
    s.add_argument('spec', type=json.loads)
    s = sub.add_parser('backfill', help='write synthetic collectd history '
                       'ending where live collection began')
    s.add_argument('--seconds', type=int, default=7200)
    s.add_argument('--seed', type=int, default=0)
    s = sub.add_parser('model', help='install a trained bundle into '
                       '[failpredict] and restart the decision engine')
    s.add_argument('path')
    args = p.parse_args(argv)
    stack = Stack(args.dir, args.venv)
    try:
        if args.cmd == 'up':
            stack.up()
        elif args.cmd == 'down':
            stack.down()
        elif args.cmd == 'status':
            return 0 if stack.status() else 1
        else:
            stack.load_ports()
            if args.cmd == 'stress':
                stack.stress(args.state == 'on')
            elif args.cmd == 'load':
                stack.set_load(args.node, args.spec)
            elif args.cmd == 'backfill':
                stack.backfill(args.seconds, args.seed)
            elif args.cmd == 'model':
                stack.model(args.path)
    except (StackError, subprocess.CalledProcessError, OSError) as exc:
        print('stack: error: %s' % exc, file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
