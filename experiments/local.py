"""The local backend: each run in its own `scaling.train` process, K at a time, with the machine's
cores (and GPUs, or fake CPU devices) split between the K slots.

A branch starts only once its trunk has completed. Children are pinned to their slot's cores, get
SIGTERM if the launcher dies (they checkpoint and stop), and hold DIR/sweep.lock until they exit,
so a restarted launcher waits for them instead of running the same run twice.
"""

import contextlib
import ctypes
import dataclasses
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import time

from experiments.runspec import ROOT, Run
from scaling.errors import ConfigError
from scaling.rundir import read_json

_FAKE_DEVICES = re.compile(r'--xla_force_host_platform_device_count=(\d+)')
_PR_SET_PDEATHSIG = 1


@dataclasses.dataclass(frozen=True)
class Slot:
  cpus: tuple[int, ...]
  env: dict  # CUDA_VISIBLE_DEVICES or XLA_FLAGS for the processes of this slot
  devices: int  # what jax.device_count() is in this slot's run


def visible_gpus() -> list[str]:
  if 'CUDA_VISIBLE_DEVICES' in os.environ:
    return [g for g in os.environ['CUDA_VISIBLE_DEVICES'].split(',') if g.strip()]
  if not shutil.which('nvidia-smi'):
    return []
  out = subprocess.run(['nvidia-smi', '-L'], capture_output=True, text=True, check=False).stdout
  return [str(i) for i, line in enumerate(l for l in out.splitlines() if l.startswith('GPU '))]


def split(items: list, k: int, what: str) -> list[list]:
  """k equal contiguous groups (the remainder is left idle)."""
  if k < 1:
    raise ConfigError(f'--max-parallel={k} must be at least 1')
  if len(items) < k:
    raise ConfigError(f'--max-parallel={k} is more than the {len(items)} {what} of this machine; '
                      f'lower it to at most {len(items)}')
  size = len(items) // k
  return [items[i * size:(i + 1) * size] for i in range(k)]


def slots(k: int, cpus: list[int], gpus: list[str], xla_flags: str) -> list[Slot]:
  cpu_groups = split(cpus, k, 'cores')
  if gpus:
    return [Slot(tuple(c), {'CUDA_VISIBLE_DEVICES': ','.join(g)}, len(g))
            for c, g in zip(cpu_groups, split(gpus, k, 'GPUs'))]
  fake = _FAKE_DEVICES.search(xla_flags)
  if not fake:
    return [Slot(tuple(c), {}, 1) for c in cpu_groups]
  share = len(split(list(range(int(fake.group(1)))), k, 'fake CPU devices')[0])
  flags = _FAKE_DEVICES.sub(f'--xla_force_host_platform_device_count={share}', xla_flags)
  return [Slot(tuple(c), {'XLA_FLAGS': flags}, share) for c in cpu_groups]


def machine_slots(k: int) -> list[Slot]:
  return slots(k, sorted(os.sched_getaffinity(0)), visible_gpus(), os.environ.get('XLA_FLAGS', ''))


def status(outdir: str, name: str) -> str:
  run = read_json(os.path.join(outdir, name, 'run.json'))
  return run['status'] if run else 'pending'


def lock(outdir: str):
  """An exclusive lock on the outdir, waited for while another launcher (or its runs) holds it."""
  f = open(os.path.join(outdir, 'sweep.lock'), 'w')
  try:
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    print(f'waiting for the runs of another launcher on {outdir} to stop', flush=True)
    fcntl.flock(f, fcntl.LOCK_EX)
  return f


def _child_setup(cpus: tuple[int, ...], libc) -> None:
  os.sched_setaffinity(0, cpus)  # XLA sizes its thread pool from the affinity mask
  if libc is not None:
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _libc():
  return ctypes.CDLL(None) if sys.platform.startswith('linux') else None


def start(run: Run, outdir: str, slot: Slot, lock_fd: int) -> subprocess.Popen:
  """One scaling.train process; its output goes to DIR/logs/NAME.log (appended across resumes)."""
  os.makedirs(os.path.join(outdir, 'logs'), exist_ok=True)
  libc = _libc()
  with open(os.path.join(outdir, 'logs', f'{run.name}.log'), 'a') as log:
    return subprocess.Popen(
        [sys.executable, '-m', 'scaling.train', *run.args(outdir)], cwd=ROOT, stdout=log,
        stderr=subprocess.STDOUT, env=os.environ | slot.env, start_new_session=True,
        pass_fds=(lock_fd,), preexec_fn=lambda: _child_setup(slot.cpus, libc))


@contextlib.contextmanager
def catch_stop():
  """Yields the signals received; meanwhile SIGINT and SIGTERM stop the sweep, not kill it."""
  received, handlers = [], {}
  for sig in (signal.SIGINT, signal.SIGTERM):
    handlers[sig] = signal.signal(sig, lambda s, _: received.append(s))
  try:
    yield received
  finally:
    for sig, handler in handlers.items():
      signal.signal(sig, handler)


@dataclasses.dataclass
class _Running:
  run: Run
  proc: subprocess.Popen
  slot: Slot
  started: float


class Pool:
  """The runs of one sweep, started in sweep order as slots free up and trunks complete."""

  def __init__(self, runs: list[Run], outdir: str, k: int, on_done):
    self.outdir, self.on_done = outdir, on_done  # on_done(run, status, seconds)
    self.result = {r.name: status(outdir, r.name) for r in runs}
    self.queue = [r for r in runs if self.result[r.name] != 'completed']
    self.free, self.running = machine_slots(min(k, max(len(self.queue), 1))), []
    self.stopping = False

  def _startable(self) -> list[Run]:
    return [r for r in self.queue if r.trunk is None or self.result[r.trunk] == 'completed']

  def _skip_orphans(self) -> None:
    """Branches whose trunk ended without completing cannot start."""
    ended = {name for name, s in self.result.items() if s in ('failed', 'diverged', 'skipped')}
    for run in [r for r in self.queue if r.trunk in ended]:
      self.queue.remove(run)
      self.result[run.name] = 'skipped'
      self.on_done(run, 'skipped', 0.0)

  def _reap(self) -> None:
    for job in [j for j in self.running if j.proc.poll() is not None]:
      self.running.remove(job)
      self.free.append(job.slot)
      ended = status(self.outdir, job.run.name)
      self.result[job.run.name] = 'failed' if ended in ('running', 'pending') else ended
      self.on_done(job.run, self.result[job.run.name], time.time() - job.started)

  def _start_ready(self, lock_fd: int) -> None:
    while self.free and self._startable():
      run = self._startable()[0]
      self.queue.remove(run)
      slot = self.free.pop(0)
      self.running.append(_Running(run, start(run, self.outdir, slot, lock_fd), slot, time.time()))

  def run(self, stop: list[int]) -> dict[str, str]:
    """name -> status once every run has ended, or once `stop` fills and the runs have stopped."""
    with lock(self.outdir) as held:
      while self.queue or self.running:
        if stop and not self.stopping:
          self.stopping = True
          self.queue.clear()
          for job in self.running:
            job.proc.send_signal(signal.SIGTERM)
        if not stop:
          self._start_ready(held.fileno())
        time.sleep(0.2)
        self._reap()
        self._skip_orphans()
    return self.result
