"""The one owner of a run directory (docs/run-format.md). The loop opens it once and talks to it
through a few calls: open (check the workdir, lock it, compare the config), restore (the resume
point, and metrics.jsonl repaired to it), log a row, checkpoint, close with a status.

  RUN/config.json  RUN/run.json  RUN/metrics.jsonl  RUN/tensorboard/  RUN/checkpoints/  RUN/lock.json

Nothing is written before the workdir is locked and the config has been checked against the
stored one. Only process 0 writes; the other processes of a multi-process run read.
"""

import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time

import flax
import jax
import optax
from ml_collections import config_dict
from tensorboardX import SummaryWriter
from tqdm import tqdm

from scaling import checkpoint, run_identity
from scaling.errors import ConfigError
from scaling.jsonfile import read_json, write_json_atomic  # re-exported: the sweep reads them here

FORMAT_VERSION = 1
LOCK = 'lock.json'
HEARTBEAT_S = 30.0  # the lock's owner rewrites its heartbeat this often
STALE_AFTER_S = 300.0  # a lock whose heartbeat is older than this is abandoned (any host)
# What the run directory holds (docs/run-format.md): True for a folder.
LAYOUT = {'config.json': False, 'run.json': False, 'metrics.jsonl': False, 'checkpoints': True,
          'tensorboard': True, 'damaged_checkpoints': True}
RUN_JSON_FIX = ('remove it to go on: the run resumes from its checkpoints and writes a new one, '
                'without the wall time and config changes the old one held')
CONFIG_JSON_FIX = 'restore it, or remove it and rerun with the config the run was trained with'


def warn(message: str) -> None:
  print(f'warning: {message}', file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# The lock: one writer per run directory.
# ----------------------------------------------------------------------------------------------
def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True  # someone else's process
  return True


def _read_lock(path: str) -> dict | None:
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def stale(holder: dict, now: float) -> str | None:
  """Why the lock of `holder` is abandoned, or None while its owner may still be writing."""
  if holder.get('host') == socket.gethostname() and not _alive(holder.get('pid', -1)):
    return f'process {holder.get("pid")} on {holder.get("host")} is gone'
  age = now - holder.get('heartbeat', 0.0)
  if age > STALE_AFTER_S:
    return (f'the heartbeat of process {holder.get("pid")} on {holder.get("host")} is {age:.0f} s '
            f'old (more than {STALE_AFTER_S:.0f} s)')
  return None


class Lock:
  """RUN/lock.json, created atomically (hard link of a complete file), kept fresh by a heartbeat.

  A second process finds it and stops with one line naming the owner's host and PID. A lock whose
  owner died on this host, or whose heartbeat stopped, is taken over with a warning.
  """

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, LOCK)
    self.me = {'host': socket.gethostname(), 'pid': os.getpid(), 'started': time.time()}
    self._stop = threading.Event()
    self._thread = None

  def _write(self, path: str) -> None:
    with open(path, 'w') as f:
      json.dump(self.me | {'heartbeat': time.time()}, f)

  def acquire(self) -> None:
    for _ in range(5):  # each pass either takes the lock or finds a new holder
      tmp = f'{self.path}.{self.me["pid"]}.tmp'
      self._write(tmp)
      try:
        os.link(tmp, self.path)
        break
      except FileExistsError:
        pass
      finally:
        os.unlink(tmp)
      holder = _read_lock(self.path)
      if holder is None and os.path.exists(self.path):
        # Never cut by its owner (hard link or rename of a complete file): edited or damaged.
        why = 'it is not a complete JSON lock'
      elif holder is None:  # released meanwhile, or being replaced: look again
        time.sleep(0.05)
        continue
      else:
        why = stale(holder, time.time())
      if why is None:
        raise ConfigError(f'workdir: {os.path.dirname(self.path)} is in use by process '
                          f'{holder.get("pid")} on host {holder.get("host")}; wait for it to end '
                          '(or stop it), or give another --workdir')
      aside = f'{self.path}.stale.{self.me["pid"]}'
      try:
        os.rename(self.path, aside)
      except FileNotFoundError:
        continue
      if _read_lock(aside) != holder:  # another process took it over first: give it back
        try:
          os.link(aside, self.path)
        except FileExistsError:
          pass
        os.unlink(aside)
        continue
      os.unlink(aside)
      warn(f'taking over the lock of {os.path.dirname(self.path)}: {why}')
    else:
      raise ConfigError(f'workdir: could not lock {self.path}; other processes keep taking it')
    self._thread = threading.Thread(target=self._beat, daemon=True)
    self._thread.start()

  def _mine(self) -> bool:
    held = _read_lock(self.path) or {}
    return (held.get('host'), held.get('pid')) == (self.me['host'], self.me['pid'])

  def _beat(self) -> None:
    while not self._stop.wait(HEARTBEAT_S):
      if not self._mine():
        warn(f'lost the lock {self.path} to another process')
        return
      tmp = f'{self.path}.{self.me["pid"]}.tmp'
      self._write(tmp)
      os.replace(tmp, self.path)

  def release(self) -> None:
    self._stop.set()
    if self._thread is not None:
      self._thread.join()
      self._thread = None
      if self._mine():
        os.unlink(self.path)


# ----------------------------------------------------------------------------------------------
# What the run is bound to (scaling.run_identity): compared before anything is written.
# ----------------------------------------------------------------------------------------------
def stored_record(workdir: str) -> tuple[int | None, dict | None, dict | None]:
  """(step, config, inputs) that a relaunch of `workdir` must match: those kept in its newest
  checkpoint that records them, else (checkpoints written before they were recorded) config.json
  and run.json's. (None, None, None) without a checkpoint: a run with none starts over."""
  steps = checkpoint_steps(workdir)
  for step in reversed(steps):
    meta = checkpoint.read_meta(workdir, step)
    if meta and 'config' in meta:
      return step, meta['config'], meta['inputs']
  if not steps:
    return None, None, None
  config = read_json(os.path.join(workdir, 'config.json'), fix=CONFIG_JSON_FIX)
  run = read_json(os.path.join(workdir, 'run.json'), fix=RUN_JSON_FIX) or {}
  inputs = run.get('inputs') or ({'fingerprint': run['dataset']['fingerprint']}
                                 if run.get('dataset') else None)
  return steps[-1], config, inputs


def check_relaunch(workdir: str, c: config_dict.ConfigDict, inputs: dict) -> dict:
  """The config changes of a relaunch against the stored record, {} for a new run; refuses a
  change of the inputs or of a field outside the allowed ones (scaling.run_identity)."""
  step, stored, stored_inputs = stored_record(workdir)
  if step is None or stored is None:
    return {}
  if stored_inputs is not None:
    run_identity.check_inputs(run_identity.input_changes(stored_inputs, inputs), c.dataset, step)
  changes = run_identity.config_changes(stored, json.loads(c.to_json_best_effort()))
  if stored_inputs is None:  # nothing to prove that a moved dataset holds the same data
    moved = [k for k in changes if k in run_identity.MOVABLE]
    if moved:
      raise ConfigError(f'{moved[0]}: changed since step {step}, and this run recorded no inputs '
                        'to compare the data with; keep the stored value (see config.json)')
  run_identity.check_changes(changes, stored, c, step)
  return {'step': step, 'fields': changes} if changes else {}


# ----------------------------------------------------------------------------------------------
# The run directory.
# ----------------------------------------------------------------------------------------------
def git_commit() -> str | None:
  here = os.path.dirname(os.path.abspath(__file__))
  try:
    out = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=here, capture_output=True, text=True,
                         timeout=10)
  except (OSError, subprocess.TimeoutExpired):
    return None
  return out.stdout.strip() if out.returncode == 0 else None


def environment(c, mesh: jax.sharding.Mesh, data) -> dict:
  """The environment half of run.json: hardware, mesh, versions, code commit, dataset and seed."""
  return {
      'task': c.task,
      'steps': c.steps,
      'seed': c.seed,
      'budget': c.budget or None,
      'mesh': {name: int(size) for name, size in mesh.shape.items()},
      'device_kind': jax.devices()[0].device_kind,
      'device_count': jax.device_count(),
      'process_count': jax.process_count(),
      'versions': {'jax': jax.__version__, 'flax': flax.__version__, 'optax': optax.__version__,
                   'python': platform.python_version()},
      'git_commit': git_commit(),
      'dataset': {'name': data.name, 'fingerprint': data.fingerprint},
      'inputs': data.inputs,
  }


def check_workdir(workdir: str) -> None:
  """A directory this process can write, created if missing; one line otherwise."""
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise ConfigError(f'workdir: {workdir} is a file, not a directory; give a directory path')
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise ConfigError(f'workdir: cannot create {workdir} ({e.strerror}); give a path you can '
                      'write') from e
  if not os.access(workdir, os.W_OK | os.X_OK):
    raise ConfigError(f'workdir: {workdir} is not writable; give a path you can write')
  for name, folder in LAYOUT.items():
    path = os.path.join(workdir, name)
    if os.path.exists(path) and os.path.isdir(path) != folder:
      raise ConfigError(f'workdir: {path} is a {"file" if folder else "folder"}, where the run '
                        f'keeps its {name} {"folder" if folder else "file"}; move it out of the '
                        'way, or give another --workdir')


def checkpoint_steps(workdir: str) -> list[int]:
  """The steps under RUN/checkpoints, read from the folder names (no orbax needed)."""
  folder = os.path.join(workdir, 'checkpoints')
  names = os.listdir(folder) if os.path.isdir(folder) else []
  return sorted(int(n) for n in names if n.isdigit())


class RunDir:
  """Open with RunDir.open; everything the loop writes into the workdir goes through here."""

  def __init__(self, workdir: str, primary: bool, lock: Lock | None, c: config_dict.ConfigDict,
               inputs: dict):
    self.workdir, self.primary, self.lock = workdir, primary, lock
    # Kept in every checkpoint too, so that a lost or edited config.json cannot change them.
    self.record = {'config': json.loads(c.to_json_best_effort()), 'inputs': inputs}
    self.run_path = os.path.join(workdir, 'run.json')
    self.metrics_path = os.path.join(workdir, 'metrics.jsonl')
    self.run = (read_json(self.run_path, fix=RUN_JSON_FIX)
                or {'format_version': FORMAT_VERSION, 'wall_time_s': 0.0})
    self._wall_base, self._start = self.run.get('wall_time_s', 0.0), time.time()
    self._metrics = self._tb = self._bar = None
    # metrics.jsonl's size at the last checkpoint and the lines written since: every checkpoint
    # keeps both, so a resume can rewrite the file to end exactly where the checkpoint is.
    self._offset, self._since = 0, []
    self.mngr = checkpoint.manager(workdir, c.keep_checkpoints)

  @classmethod
  def open(cls, workdir: str, c: config_dict.ConfigDict, primary: bool, inputs: dict,
           abstract_state) -> 'RunDir':
    """Checks the workdir, locks it, compares the config and the inputs with what the run was
    trained on and its checkpoints with the model (all before any write), then writes
    config.json. Raises ConfigError with nothing in the workdir changed."""
    lock = None
    if primary:
      check_workdir(workdir)
      lock = Lock(workdir)
      try:
        lock.acquire()
      except OSError as e:
        raise ConfigError(f'workdir: cannot write {workdir} ({e.strerror}); give a path you can '
                          'write') from e
    try:
      changes = check_relaunch(workdir, c, inputs)
      checkpoint.check_matches(workdir, abstract_state)  # another model: never called damage
      rundir = cls(workdir, primary, lock, c, inputs)
    except BaseException:
      if lock is not None:
        lock.release()
      raise
    if changes:
      warn(f'config changed since step {changes["step"]}: '
           + ', '.join(f'{k} {a!r} -> {b!r}' for k, (a, b) in changes['fields'].items()))
      rundir.run.setdefault('config_changes', []).append(changes)
    if primary:
      with open(os.path.join(workdir, 'config.json.tmp'), 'w') as f:
        f.write(c.to_json_best_effort(indent=2))
      os.replace(os.path.join(workdir, 'config.json.tmp'), os.path.join(workdir, 'config.json'))
    return rundir

  def update(self, **fields) -> None:
    self.run.update(fields, wall_time_s=self._wall_base + time.time() - self._start)
    if self.primary:
      write_json_atomic(self.run_path, self.run)

  def restore(self, abstract_state):
    """(state, meta) of the newest valid checkpoint, or (None, None); a damaged one is reported
    and set aside (checkpoint.restore_latest)."""
    quarantine = os.path.join(self.workdir, 'damaged_checkpoints') if self.primary else None
    return checkpoint.restore_latest(self.mngr, abstract_state, quarantine, warn)

  def start_metrics(self, meta: dict | None, start: int, total: int) -> None:
    """Rewrites metrics.jsonl to end at the checkpoint `meta` describes (empty without one: the
    run starts over), then opens it for appending. A line cut short by a kill, or rows logged
    after the checkpoint, are replaced by the checkpoint's own copy of its last rows."""
    self._bar = tqdm(total=total, initial=start, disable=not self.primary, unit='step',
                     dynamic_ncols=True, mininterval=1.0)
    if not self.primary:
      return
    offset, lines = (meta['metrics_offset'], meta['metrics_rows']) if meta else (0, [])
    with open(self.metrics_path, 'a+b') as f:
      size = f.seek(0, os.SEEK_END)
      if size < offset:
        f.seek(0)
        kept = f.read().rfind(b'\n') + 1
        warn(f'metrics.jsonl has {size} bytes, fewer than the {offset} that checkpoint step '
             f'{meta["step"]} recorded; rows before step {meta["step"]} are missing from it')
        offset = kept
      f.truncate(offset)
      f.write(''.join(lines).encode())
      self._offset = f.tell()
    self._metrics = open(self.metrics_path, 'a')
    self._tb = SummaryWriter(os.path.join(self.workdir, 'tensorboard'))

  def log(self, row: dict) -> None:
    line = json.dumps(row, default=float) + '\n'
    self._since.append(line)
    if 'train_loss' in row:
      self._bar.update(row['step'] - self._bar.n)
      postfix = {'loss': f"{row['train_loss']:.4f}"}
      if 'tokens_per_s' in row:
        postfix['tok/s'] = f"{row['tokens_per_s']:,.0f}"
      self._bar.set_postfix(postfix, refresh=False)
    if not self.primary:
      return
    self._metrics.write(line)
    self._metrics.flush()
    for key, value in row.items():
      if isinstance(value, (int, float)) and key != 'step':
        self._tb.add_scalar(key, value, row['step'])

  def checkpoint(self, step: int, state, seed: int, window: list[dict]) -> None:
    """Saves `state` at `step` (asynchronously) with the rows logged since the last checkpoint."""
    checkpoint.save(self.mngr, step, state, seed, window, metrics_offset=self._offset,
                    metrics_rows=self._since, **self.record)
    self._offset = self._metrics.tell() if self._metrics else 0
    self._since = []

  def close(self, status: str | None = None, **fields) -> None:
    """Waits for the checkpoints, records `status` (None: leave run.json as it is), unlocks."""
    try:
      self.mngr.wait_until_finished()
      if status is not None:
        self.update(status=status, **fields)
    finally:
      for f in (self._metrics, self._tb, self._bar):
        if f is not None:
          f.close()
      self._metrics = self._tb = self._bar = None
      if self.lock is not None:
        self.lock.release()
