"""A real one-node SLURM cluster on localhost for the cluster tests: munged, slurmctld and slurmd
from Debian's `munge` and `slurm-wlm`, with a generated slurm.conf and a fresh state directory.

  with Cluster.start() as cluster:   # needs root, munged, slurmctld and slurmd on PATH
    subprocess.run(['sbatch', ...], env=cluster.env)

Everything lives in one new temporary folder: the munge key and socket, slurm.conf, the state
and spool directories, the daemons' logs. A StateSaveLocation left by another cluster is fatal
to slurmctld, so every start gets a fresh one. The daemons run in the foreground as our children
and are stopped by their pids. The node declares CPUS cores, more than the 2 of a CI machine, so
that several small cases share the cluster at once (SlurmdParameters=config_overrides lets
slurmd accept more than it finds); each job asks for one core per task.
"""

import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

DAEMONS = ('munged', 'slurmctld', 'slurmd')
CPUS = 12
SKIP = ('real-SLURM tests skipped; run them with `bash .ci/run` (installs slurm-wlm and munge) '
        'or `SCALING_SLURM_TESTS=1 pytest -q tests/test_slurm_cluster.py` as root')


def wanted() -> bool:
  """SCALING_SLURM_TESTS=1, or CI=true: run them, and fail rather than skip when they cannot
  start. SCALING_SLURM_TESTS=0 defers them (.ci/run, during `make test`, runs them right after)."""
  flag = os.environ.get('SCALING_SLURM_TESTS')
  return flag == '1' if flag is not None else os.environ.get('CI', '').lower() == 'true'


def missing() -> list[str]:
  return [d for d in DAEMONS + ('sbatch', 'squeue', 'scancel', 'scontrol') if not shutil.which(d)]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def slurm_conf(d: str, host: str, cpus: int) -> str:
  return '\n'.join([
      'ClusterName=scalingtest',
      f'SlurmctldHost={host}(127.0.0.1)',
      f'SlurmctldPort={_free_port()}',
      f'SlurmdPort={_free_port()}',
      'SlurmUser=root',
      'SlurmdUser=root',
      'AuthType=auth/munge',
      f'AuthInfo=socket={d}/munge.socket',
      'CredType=cred/munge',
      f'StateSaveLocation={d}/state',
      f'SlurmdSpoolDir={d}/spool',
      f'SlurmctldPidFile={d}/slurmctld.pid',
      f'SlurmdPidFile={d}/slurmd.pid',
      f'SlurmctldLogFile={d}/slurmctld.log',
      f'SlurmdLogFile={d}/slurmd.log',
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_CPU',
      'SchedulerType=sched/backfill',
      'SchedulerParameters=sched_min_interval=100000',  # a freed core is handed on within 0.1 s
      'AccountingStorageType=accounting_storage/none',
      'JobAcctGatherType=jobacct_gather/none',
      'JobCompType=jobcomp/none',
      'MpiDefault=none',
      'ReturnToService=2',
      'SlurmdParameters=config_overrides',
      'MinJobAge=3600',  # ended jobs stay visible to scontrol for the whole test session
      'KillWait=10',
      'InactiveLimit=0',
      f'NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN',
      f'PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP',
  ]) + '\n'


@dataclasses.dataclass
class Cluster:
  dir: str
  env: dict  # os.environ with SLURM_CONF: what every sbatch, squeue and launcher call needs
  procs: list

  @classmethod
  @contextlib.contextmanager
  def start(cls, cpus: int = CPUS, timeout: float = 120):
    d = tempfile.mkdtemp(prefix='slurm-')  # short: a unix socket path has at most 107 bytes
    host = socket.gethostname().split('.')[0]
    for sub in ('state', 'spool'):
      os.makedirs(os.path.join(d, sub))
    key = os.path.join(d, 'munge.key')
    with open(key, 'wb') as f:
      f.write(os.urandom(1024))
    os.chmod(key, 0o600)
    with open(os.path.join(d, 'slurm.conf'), 'w') as f:
      f.write(slurm_conf(d, host, cpus))
    env = dict(os.environ, SLURM_CONF=os.path.join(d, 'slurm.conf'))
    cluster = cls(d, env, [])
    try:
      cluster._spawn('munged', ['munged', '-F', '--force', f'--socket={d}/munge.socket',
                                f'--key-file={key}', f'--pid-file={d}/munged.pid',
                                f'--log-file={d}/munged.log', f'--seed-file={d}/munged.seed'])
      cluster._wait(lambda: os.path.exists(f'{d}/munge.socket'), 'munged', timeout)
      cluster._spawn('slurmctld', ['slurmctld', '-D', '-i', '-f', env['SLURM_CONF']])
      cluster._spawn('slurmd', ['slurmd', '-D', '-N', host, '-f', env['SLURM_CONF']])
      cluster._wait(cluster._node_idle, 'slurmd to register with slurmctld', timeout)
      yield cluster
    finally:
      cluster.stop()

  def _spawn(self, name: str, cmd: list[str]) -> None:
    log = open(os.path.join(self.dir, f'{name}.out'), 'w')
    self.procs.append(subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT))

  def _node_idle(self) -> bool:
    out = self.run(['sinfo', '-h', '-o', '%T'], check=False)
    return out.returncode == 0 and out.stdout.strip() == 'idle'

  def _wait(self, ready, what: str, timeout: float) -> None:
    end = time.time() + timeout
    while not ready():
      dead = [p for p in self.procs if p.poll() is not None]
      if dead or time.time() > end:
        raise RuntimeError(f'SLURM test cluster: no {what} after {timeout:.0f} s; '
                           f'{"a daemon exited" if dead else "timed out"}:\n{self.logs()}')
      time.sleep(0.5)

  def logs(self, tail: int = 4000) -> str:
    out = []
    for name in ('munged.log', 'slurmctld.log', 'slurmd.log', *(f'{n}.out' for n in DAEMONS)):
      path = os.path.join(self.dir, name)
      if os.path.exists(path):
        with open(path, errors='replace') as f:
          out.append(f'--- {name}\n{f.read()[-tail:]}')
    return '\n'.join(out)

  def run(self, cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, env=self.env, capture_output=True, text=True)
    if check and out.returncode:
      raise RuntimeError(f'{" ".join(cmd)} failed ({out.returncode}): {out.stderr.strip()}')
    return out

  def stop(self) -> None:
    """Cancels what is left, then stops the daemons by pid: slurmd, slurmctld, munged."""
    if any(p.poll() is None for p in self.procs[1:]):
      self.run(['scancel', '--full', '--user=root'], check=False)
    for proc in reversed(self.procs):
      if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
          proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
          proc.kill()
          proc.wait()
    self.procs.clear()
