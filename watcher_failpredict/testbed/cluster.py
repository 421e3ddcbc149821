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

"""The simulated NFV cluster: its state, one time step, its metric stream.

A Testbed holds one stretch (training or test, or the fit / validation
parts of the training stretch; see STRETCHES) of a scenario: the
exogenous inputs computed up front (background load per server, request
rate per chain, both with seeded noise), the placement of every VNF, the
fluid queue of every hop, the live migrations under way, and what
collectd would have reported (host and instance metrics every
``metrics_interval`` seconds). step() advances it by ``step`` seconds with
the equations of physics.py; the decision loop (runner.py) reads its
metrics through an InMemoryDataSource and starts migrations on it.
"""

import dataclasses

import numpy as np
from watcher.decision_engine.model import element
from watcher.decision_engine.model import model_root

from watcher_failpredict.datasources import memory
from watcher_failpredict.datasources import windows as metric_windows
from watcher_failpredict.prediction import labels
from watcher_failpredict.strategies import migrations
from watcher_failpredict.testbed import loads
from watcher_failpredict.testbed import physics

#: Unix time of the start of the training stretch (any fixed value works;
#: the test stretch starts train_duration seconds later).
EPOCH = 1_700_000_000.0
HOST_METRIC_NAMES = tuple(metric_windows.HOST_METRICS)


@dataclasses.dataclass
class Migration:
    vnf: int
    src: int
    dst: int
    start: float          # seconds from the stretch start
    end: float
    downtime: float       # stop-and-copy seconds (the switch-over adds more)


HOST_PREFIX = 'compute-'
VNF_UUID_PREFIX = '00000000-0000-4000-8000-'


def host_name(i):
    """The hostname of server ``i`` (``compute-07``)."""
    return f'{HOST_PREFIX}{i:02d}'


def host_index(name):
    """The server index of a :func:`host_name`.

    :raises ValueError: not a testbed hostname
    """
    return _index(name, HOST_PREFIX, 'hostname')


def vnf_uuid(i):
    """The instance UUID of VNF ``i``."""
    return f'{VNF_UUID_PREFIX}{i:012d}'


def vnf_index(uuid):
    """The VNF index of a :func:`vnf_uuid`.

    :raises ValueError: not a testbed VNF UUID
    """
    return _index(uuid, VNF_UUID_PREFIX, 'VNF UUID')


def _index(name, prefix, what):
    digits = name[len(prefix):] if name.startswith(prefix) else ''
    if not digits.isdigit():
        raise ValueError(f'{name!r} is not a testbed {what} '
                         f'({prefix}<number>)')
    return int(digits)


def initial_placement(n_chains, n_hops, n_servers):
    """Server index of every VNF (chain-major order)."""
    j, h = np.divmod(np.arange(n_chains * n_hops), n_hops)
    return (j * (n_hops + 1) + h) % n_servers


#: The stretches a Testbed can simulate. ``fit`` and ``validation`` split
#: the training stretch for the development protocol (``evaluate
#: --stretch validation``): the model is fitted on ``fit``, the policies
#: run on ``validation``, and the test stretch is never simulated.
STRETCHES = ('train', 'test', 'fit', 'validation')
#: Share of the training stretch the model is fitted on in the
#: development protocol; the rest is the validation stretch.
FIT_FRACTION = 2.0 / 3.0


def fit_steps(scn):
    """Steps of the ``fit`` part of the training stretch: FIT_FRACTION of
    it, rounded down to a whole decision interval.
    """
    per = int(round(scn['decision_interval'] / float(scn['step'])))
    n = int(round(float(scn['train_duration']) / float(scn['step'])))
    return max(int(n * FIT_FRACTION) // per * per, per)


def stretch_bounds(scn, stretch):
    """``(first step, end step)`` of a stretch on the scenario's time axis
    (step 0 = the start of the training stretch).
    """
    if stretch not in STRETCHES:
        raise ValueError(f'stretch must be one of {", ".join(STRETCHES)}, '
                         f'got {stretch!r}')
    dt = float(scn['step'])
    n_train = int(round(float(scn['train_duration']) / dt))
    if stretch == 'train':
        return 0, n_train
    if stretch == 'fit':
        return 0, fit_steps(scn)
    if stretch == 'validation':
        return fit_steps(scn), n_train
    return n_train, n_train + int(round(float(scn['test_duration']) / dt))


#: The training stretch (and its fit / validation parts) never drifts.
NO_DRIFT = {'period_scale': 1.0, 'phase_shift': 0.0, 'scale': 1.0,
            'offset': 0.0}


class Testbed:
    """One stretch of a scenario, simulated step by step.

    :param scn: a validated scenario (scenario.load())
    :param seed: the run's seed (noise of loads and latency samples)
    :param stretch: 'train' (starts at 0), 'test' (starts at
        train_duration, with the scenario's drift applied), or the two
        parts of the training stretch, 'fit' (its first FIT_FRACTION) and
        'validation' (the rest): both cut from the training stretch's own
        exogenous series (same noise), no drift
    """

    def __init__(self, scn, seed, stretch='test'):
        first, end = stretch_bounds(scn, stretch)
        self.scn = scn
        self.seed = int(seed)
        self.stretch = stretch
        self.dt = float(scn['step'])
        srv, ch = scn['servers'], scn['chains']
        self.n_servers = srv['count']
        self.cores = float(srv['cores'])
        self.hops = [h['name'] for h in ch['hops']]
        self.n_hops = len(self.hops)
        self.n_chains = ch['count']
        self.n_vnfs = self.n_chains * self.n_hops
        self.cost = np.tile([h['cost'] for h in ch['hops']], self.n_chains)
        self.vcpus = float(ch['vcpus'])
        self.first = first
        self.offset = first * self.dt
        self.n_steps = end - first
        self.t = self.dt * np.arange(self.n_steps)
        self._exogenous()
        # placement: hop h of chain j on server (j (hops + 1) + h) mod
        # servers: each chain on consecutive servers, and each server a mix
        # of hop kinds (not all the DPIs on one server)
        self.host_of = initial_placement(self.n_chains, self.n_hops,
                                         self.n_servers)
        self.backlog = np.zeros(self.n_vnfs)
        self.migrations = []          # every migration started
        self.active = []
        self.k = 0
        self.rng_lat = np.random.default_rng([self.seed, 7])
        self._alloc_records()
        #: the stretch simulated before this one (a Testbed), whose host
        #: metrics a datasource reaching back past this stretch's start
        #: serves, as an operator's metrics backend keeps them
        self.before = None

    # -- inputs ---------------------------------------------------------------

    def _exogenous(self):
        scn = self.scn
        test = self.stretch == 'test'
        drift = scn['drift'] if test else NO_DRIFT
        rng = np.random.default_rng([self.seed, 1 if test else 0])
        if test:
            t_abs = self.t + self.offset
        else:
            # fit and validation are cut from the training stretch's
            # series, so they see exactly its load and noise
            t_abs = self.dt * np.arange(stretch_bounds(scn, 'train')[1])
        bg = scn['servers']['background']
        shift = self.phase_offsets() + drift['phase_shift']
        self.bg = np.stack([
            loads.pattern(bg[s % len(bg)], t_abs, rng, drift['period_scale'],
                          shift[s], drift['scale'], drift['offset'])
            for s in range(self.n_servers)]) * self.cores / 100.0
        self.rate = np.stack([
            loads.pattern(scn['chains']['rate'], t_abs, rng)
            for _ in range(self.n_chains)])
        if not test:
            cut = slice(self.first, self.first + self.n_steps)
            self.bg, self.rate = self.bg[:, cut], self.rate[:, cut]
        #: absolute times (s from the training stretch's start) simulated
        self.t_abs = self.t + self.offset

    def phase_offsets(self):
        """Seconds added to each server's background phase: 0, or with
        ``random_phases`` a draw in [0, period) per server and seed, the
        same for every stretch (one cluster, seen over time), so a seed is
        another arrangement of the servers' cycles, not only other noise.
        Trace patterns replay their trace unshifted.
        """
        bg = self.scn['servers']['background']
        out = np.zeros(self.n_servers)
        if self.scn.get('random_phases'):
            rng = np.random.default_rng([self.seed, 5])
            draws = rng.random(self.n_servers)
            for s in range(self.n_servers):
                spec = bg[s % len(bg)]
                if spec['kind'] != 'trace':
                    out[s] = draws[s] * float(spec.get('period') or 0.0)
        return out

    def offered_cores(self, k):
        """Each VNF's offered CPU demand at step k: ``min(lambda c, v)``."""
        lam = np.repeat(self.rate[:, k], self.n_hops)
        return np.minimum(lam * self.cost, self.vcpus)

    def demand(self, k, host_of=None):
        """Runnable demand per server at step k (cores), with migrations."""
        host_of = self.host_of if host_of is None else host_of
        d = self.bg[:, k] + np.bincount(host_of, self.offered_cores(k),
                                        self.n_servers)
        over = self.scn['migration']['overhead_cores']
        for m in self.active:
            d[m.src] += over
            d[m.dst] += over
        return d

    # -- records --------------------------------------------------------------

    def _alloc_records(self):
        n, c = self.n_steps, self.n_chains
        ns = self.scn['latency_samples']
        self.rec_completed = np.zeros((n, c))
        self.rec_timeouts = np.zeros((n, c))
        self.rec_samples = np.full((n, c, ns), np.nan)
        self.rec_cpu = np.zeros((self.n_servers, n))
        self.rec_mem = np.zeros((self.n_servers, n))
        self.rec_load = np.zeros((self.n_servers, n))
        self.rec_net = np.zeros((self.n_servers, n))
        self.rec_vcpu = np.zeros((self.n_vnfs, n))

    # -- one step -------------------------------------------------------------

    def step(self):
        """Advance one step; finished migrations switch their VNF over."""
        k, dt = self.k, self.dt
        scn, mig = self.scn, self.scn['migration']
        t0 = self.t[k]
        demand = self.demand(k)
        g = physics.contention(demand, self.cores)
        capacity = np.ones(self.n_vnfs)
        outage = np.zeros(self.n_vnfs)
        finished = [m for m in self.active if m.end < t0 + dt]
        for m in finished:
            outage[m.vnf] = min(m.downtime + mig['switchover_s'], dt)
            capacity[m.vnf] *= physics.outage_capacity_factor(outage[m.vnf],
                                                              dt)
        mu = physics.service_rate(self.vcpus, g[self.host_of],
                                  self.cost) * capacity
        timeout = scn['chains']['timeout']
        arrival = self.rate[:, k].copy()
        served = np.zeros(self.n_vnfs)
        dropped = np.zeros(self.n_chains)
        sojourn = np.zeros((self.n_chains, self.n_hops))
        wait = np.zeros((self.n_chains, self.n_hops))
        for h in range(self.n_hops):
            idx = np.arange(self.n_chains) * self.n_hops + h
            q_before = self.backlog[idx]
            out, q, drop = physics.queue_step(q_before, arrival, mu[idx], dt,
                                              timeout)
            sojourn[:, h] = physics.mm1_sojourn(
                mu[idx], arrival / np.where(mu[idx] > 0, mu[idx], 1.0))
            wait[:, h] = np.where(mu[idx] > 0,
                                  q / np.where(mu[idx] > 0, mu[idx], 1.0),
                                  timeout)
            self.backlog[idx] = q
            served[idx] = out
            dropped += drop
            arrival = out
        ns = scn['latency_samples']
        samples = (self.rng_lat.exponential(
            1.0, size=(self.n_chains, self.n_hops, ns)) *
            np.where(np.isfinite(sojourn), sojourn, timeout)[..., None]
        ).sum(axis=1) + wait.sum(axis=1)[:, None] + \
            self.n_hops * scn['chains']['link_latency']
        if outage.any():
            # a request arriving during a switch-over outage waits for its
            # end: with probability outage/dt, uniform in [0, outage]
            out = outage.reshape(self.n_chains, self.n_hops)
            hit = self.rng_lat.random((self.n_chains, self.n_hops, ns)) < \
                (out / dt)[..., None]
            extra = self.rng_lat.random((self.n_chains, self.n_hops, ns)) * \
                out[..., None]
            samples = samples + np.sum(np.where(hit, extra, 0.0), axis=1)
        late = physics.timeout_fraction(samples, timeout)
        done = arrival * dt   # served by the last hop during the step
        self.rec_completed[k] = done * (1.0 - late)
        self.rec_timeouts[k] = dropped + done * late
        self.rec_samples[k] = np.where(samples > timeout, np.nan, samples)
        # what collectd sees
        used = np.minimum(demand, self.cores)
        self.rec_cpu[:, k] = physics.host_cpu_percent(demand, self.cores)
        self.rec_load[:, k] = demand
        vnf_cpu = np.minimum(served * self.cost, self.vcpus)
        self.rec_vcpu[:, k] = 100.0 * vnf_cpu / self.vcpus
        mem_mb = scn['servers']['os_memory_mb'] + np.bincount(
            self.host_of, np.full(self.n_vnfs, 0.8 * scn['chains'][
                'memory_mb']), self.n_servers)
        for m in self.active:
            mem_mb[m.dst] += 0.8 * scn['chains']['memory_mb']
        self.rec_mem[:, k] = 100.0 * mem_mb / scn['servers']['memory_mb']
        self.rec_net[:, k] = 2 * scn['chains']['request_bytes'] * np.bincount(
            self.host_of, served, self.n_servers)
        del used
        for m in finished:
            self.host_of[m.vnf] = m.dst
            self.active.remove(m)
        self.k += 1

    def run_until(self, k_end):
        while self.k < min(k_end, self.n_steps):
            self.step()

    # -- migrations -----------------------------------------------------------

    def migrating(self, vnf):
        return any(m.vnf == vnf for m in self.active)

    def start_migration(self, vnf, dst):
        """Start a live migration of ``vnf`` to server ``dst`` now.

        Its duration comes from physics.migration_duration() with the
        VNF's CPU use now standing for its dirty-page rate. Returns the
        Migration, or None when it is already migrating or already there.
        """
        src = int(self.host_of[vnf])
        if self.migrating(vnf) or src == dst:
            return None
        total, downtime = self.migration_plan(vnf)
        now = self.k * self.dt
        m = Migration(vnf=vnf, src=src, dst=int(dst), start=now,
                      end=now + total, downtime=downtime)
        self.active.append(m)
        self.migrations.append(m)
        return m

    def migration_plan(self, vnf):
        """``(duration, stop-and-copy seconds)`` of a live migration of
        ``vnf`` started now: physics.migration_duration() with the VNF's
        CPU use in the last step standing for its dirty-page rate.
        """
        mig = self.scn['migration']
        cpu_frac = self.rec_vcpu[vnf, max(self.k - 1, 0)] / 100.0
        return physics.migration_duration(
            self.scn['chains']['memory_mb'], cpu_frac,
            mig['bandwidth_mb_s'], mig['dirty_mb_s_at_full_cpu'],
            mig['setup_s'], mig['max_downtime_s'])

    def migration_history(self, since):
        """Migrations as Watcher's action table reports them
        (``strategies.migrations.from_watcher_actions``): one under way is
        dated now whatever its start, a finished one by its completion
        time; those dated before ``since`` (Unix s) are left out.
        """
        now = self.now()
        out = []
        for m in self.migrations:
            at = now if m in self.active else EPOCH + self.offset + m.end
            if at >= since:
                out.append(migrations.Migration(
                    vnf_uuid(m.vnf), host_name(m.src), host_name(m.dst), at))
        return out

    # -- what the decision engine sees ---------------------------------------

    def now(self):
        """Unix time of the current step boundary."""
        return EPOCH + self.offset + self.k * self.dt

    def metric_samples(self, start_k=0, end_k=None):
        """collectd samples of steps [start_k, end_k): ``(times, host,
        instance)``; ``host[metric]`` is (servers, samples), instance
        ``cpu``/``memory`` (vnfs, samples). A sample averages the steps of
        its interval and is stamped at the interval's end.
        """
        end_k = self.k if end_k is None else end_k
        per = int(round(self.scn['metrics_interval'] / self.dt))
        first = -(-start_k // per)
        last = end_k // per
        if last <= first:
            empty = np.zeros((0,))
            return empty, {}, {}
        sl = slice(first * per, last * per)

        def avg(a):
            return a[:, sl].reshape(a.shape[0], -1, per).mean(axis=2)

        times = EPOCH + self.offset + self.dt * per * np.arange(
            first + 1, last + 1) - 1.0
        n = times.size
        host = {'cpu': avg(self.rec_cpu), 'memory': avg(self.rec_mem),
                'load': avg(self.rec_load),
                'disk': np.full((self.n_servers, n), 1e5),
                'net': avg(self.rec_net)}
        inst = {'cpu': avg(self.rec_vcpu),
                'memory': np.full((self.n_vnfs, n),
                                  0.8 * self.scn['chains']['memory_mb'])}
        return times, host, inst

    def datasource(self, history):
        """An InMemoryDataSource holding the last ``history`` seconds (of
        host and instance metrics, from the stretch before this one too
        when :attr:`before` is set).
        """
        ds = memory.InMemoryDataSource()
        need = int(np.ceil(history / self.dt))
        times, host, inst = self.metric_samples(max(self.k - need, 0))
        if self.before is not None and need > self.k:
            b = self.before
            b_times, b_host, b_inst = b.metric_samples(
                max(b.k - (need - self.k), 0))

            def joined(old, new):
                return {m: np.concatenate([old[m], new[m]], axis=1)
                        if m in new else old[m] for m in old}
            times = np.concatenate([b_times, times])
            host, inst = joined(b_host, host), joined(b_inst, inst)
        for s in range(self.n_servers):
            for metric in HOST_METRIC_NAMES:
                ds.add(metric_windows.COMPUTE_NODE, metric, host_name(s),
                       times, host[metric][s])
        for v in range(self.n_vnfs):
            for metric in ('cpu', 'memory'):
                ds.add(metric_windows.INSTANCE, metric, vnf_uuid(v), times,
                       inst[metric][v])
        return ds

    def host_windows(self):
        """ClusterWindows of every host over the whole stretch so far."""
        times, host, _ = self.metric_samples(0)
        step = self.scn['metrics_interval']
        return metric_windows.ClusterWindows(
            names=tuple(host_name(s) for s in range(self.n_servers)),
            times=times - (step - 1.0), step=step, data=host,
            last_seen=np.full(self.n_servers, times[-1]))

    def compute_model(self):
        """A Watcher ModelRoot of the testbed now, as Nova would show it.

        A VNF under migration is still on its source (Nova moves it when
        the migration completes); its destination already holds its claim
        (Placement allocates on both hosts during a live migration), shown
        here as that host's reserved vCPU, RAM and disk, so a second move
        in a later audit cannot over-subscribe a destination.
        """
        srv, ch = self.scn['servers'], self.scn['chains']
        claims = np.bincount([m.dst for m in self.active],
                             minlength=self.n_servers).astype(int)
        model = model_root.ModelRoot()
        for s in range(self.n_servers):
            n = int(claims[s])
            model.add_node(element.ComputeNode(
                uuid=f'node-{s:02d}', hostname=host_name(s),
                status='enabled', state='up', vcpus=srv['cores'],
                memory=srv['memory_mb'], disk=srv['disk_gb'],
                vcpu_reserved=n * ch['vcpus'],
                memory_mb_reserved=n * ch['memory_mb'],
                disk_gb_reserved=n * ch['disk_gb'],
                vcpu_ratio=1.0, memory_ratio=1.0, disk_ratio=1.0))
        for v in range(self.n_vnfs):
            inst = element.Instance(
                uuid=vnf_uuid(v),
                name=f'{self.hops[v % self.n_hops]}-{v // self.n_hops}',
                vcpus=ch['vcpus'], memory=ch['memory_mb'],
                disk=ch['disk_gb'], state='active')
            model.add_instance(inst)
            model.map_instance(inst, f'node-{int(self.host_of[v]):02d}')
        return model

    # -- what an oracle knows -------------------------------------------------

    def future_host_cpu(self, horizon_s):
        """Host CPU percent over the next ``horizon_s`` seconds if nothing
        moves: the exogenous future (background, request rates) with the
        placement as it will be once the migrations under way finish.
        """
        h = max(int(round(horizon_s / self.dt)), 1)
        ks = range(self.k, min(self.k + h, self.n_steps))
        host_of = self.host_of.copy()
        for m in self.active:
            host_of[m.vnf] = m.dst
        out = np.stack([physics.host_cpu_percent(
            self.demand(k, host_of), self.cores) for k in ks], axis=1) \
            if ks else self.rec_cpu[:, max(self.k - 1, 0):self.k]
        return out

    # -- outcomes -------------------------------------------------------------

    def failure_seconds(self, threshold, period):
        """Server-seconds in failure state (rolling mean CPU >= threshold)."""
        steps = max(int(round(period / self.dt)), 1)
        state = labels.failure_state(self.rec_cpu[:, :self.k], threshold,
                                     steps)
        return float(state.sum() * self.dt)
