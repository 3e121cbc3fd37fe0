"""The one training loop, for every task.

  python -m scaling.train --config=configs/lm.py:size=tiny --workdir=DIR [--config.steps=...]

Reads top to bottom: checks, mesh, state, data, step functions, then the loop. Rerunning with the
same workdir resumes from the latest checkpoint.
"""

import math
import os
import signal
import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from scaling import checkpoint, optim, runinfo, sharding, steps
from scaling.errors import ConfigError
from scaling.metrics import Accounting
from scaling.progress import Progress
from scaling.runlog import RunLog
from scaling.tasks import TASKS

_CONFIG = config_flags.DEFINE_config_file('config', None, 'configs/<task>.py:<arg>', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'run directory (created; resumed if it exists)')
_COORDINATOR = flags.DEFINE_string('coordinator_address', None, 'host:port of process 0')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'processes in a multi-process run')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'this process, in [0, num_processes)')
DTYPES = ('float32', 'bfloat16')


# ----------------------------------------------------------------------------------------------
# Checks: every bad input becomes one line naming the field and the fix.
# ----------------------------------------------------------------------------------------------
def check_config(c, n_devices: int) -> None:
  if c.task not in TASKS:
    raise ConfigError(f'task: unknown {c.task!r}; use one of {", ".join(TASKS)}')
  if c.dtype not in DTYPES:
    raise ConfigError(f'dtype: unknown {c.dtype!r}; use one of {", ".join(DTYPES)}')
  for field in ('steps', 'log_every', 'eval_every', 'checkpoint_every', 'grad_accum'):
    if c[field] < 1:
      raise ConfigError(f'{field}: {c[field]} must be at least 1')
  data, fsdp, _ = sharding.mesh_shape(c.mesh, n_devices)
  shards = data * fsdp * jax.process_count() // math.gcd(data * fsdp, jax.process_count())
  if c.batch_size % (shards * c.grad_accum):
    raise ConfigError(f'batch_size: {c.batch_size} is not divisible by data*fsdp*grad_accum = '
                      f'{data * fsdp * c.grad_accum}; make it a multiple')
  TASKS[c.task].check_config(c)
  optim.check_config(c)


def maybe_initialize_distributed() -> None:
  if _NUM_PROCESSES.value and _NUM_PROCESSES.value > 1:
    jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  elif int(os.environ.get('SLURM_NTASKS', '1')) > 1:
    jax.distributed.initialize()  # reads the coordinator and ranks from SLURM's variables


# ----------------------------------------------------------------------------------------------
# The loop.
# ----------------------------------------------------------------------------------------------
def train(c, workdir: str, log: RunLog) -> str:
  task = TASKS[c.task]
  mesh = sharding.make_mesh(c.mesh)
  data = task.make_data(c, jax.process_index(), jax.process_count())
  described = task.describe(c)
  log.update(status='running', error=None, **described, **runinfo.describe(c, mesh, data))
  fns = steps.build(c, task, mesh)

  mngr = checkpoint.manager(workdir, c.keep_checkpoints)
  state, meta = checkpoint.restore(mngr, fns.abstract_state)
  forked = state is None and bool(c.init_from)
  if forked:
    state, meta = checkpoint.restore_fork(c, fns.abstract_state)
    log.update(forked_from={'workdir': os.path.abspath(c.init_from), 'step': c.init_step})
  state, start = (fns.init(), 0) if state is None else (state, meta['step'])
  if start >= c.steps:
    return 'completed'  # a finished run, started again: nothing to redo
  log.start_metrics(start)

  eval_batches = [sharding.global_batch(b, mesh) for b in data.eval_batches()]
  accounting = Accounting(c, described, mesh)
  progress = Progress(c.steps, start, enabled=log.enabled)
  if meta is not None and not forked:
    accounting.resume_window(meta['metrics_window'])
  preempted = _catch_sigterm()
  if start == 0 or forked:
    log.log(accounting.eval_row(start, fns.evaluate(state, eval_batches)))

  for step in range(start, c.steps):
    batch = sharding.global_batch(data.train_batch(step), mesh)
    state, metrics = fns.train_step(state, batch, step)
    done = step + 1
    evaluate = done % c.eval_every == 0 or done == c.steps
    _log_train(accounting.add(done, metrics, close=evaluate), log, progress)
    if evaluate:
      _log_train(accounting.flush(), log, progress)
      log.log(accounting.eval_row(done, fns.evaluate(state, eval_batches)))
    stop = preempted()  # read once: a signal between two reads must not skip the save
    if done % c.checkpoint_every == 0 or done == c.steps or stop:
      _log_train(accounting.flush(), log, progress)  # rows up to `done` are on disk before it
      checkpoint.save(mngr, done, state, c.seed, accounting.open_window())
    if stop:
      break
  mngr.wait_until_finished()  # the last step always checkpointed above, flushing its rows
  progress.close()
  if stop:
    return 'preempted'
  task.finish(fns.model(state), c, workdir)
  log.update(final=accounting.final)
  return 'completed'


class Diverged(RuntimeError):
  pass


def _log_train(rows: list[dict], log: RunLog, progress: Progress) -> None:
  for row in rows:
    log.log(row)
    progress.update(row)
    if not math.isfinite(row['train_loss']):
      raise Diverged(f'train_loss is {row["train_loss"]} at step {row["step"]}')


def _catch_sigterm():
  received = []
  signal.signal(signal.SIGTERM, lambda *_: received.append(True))
  return lambda: bool(received)


# ----------------------------------------------------------------------------------------------
# Entry point: a run directory always ends with a status.
# ----------------------------------------------------------------------------------------------
def main(argv) -> None:
  del argv
  logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  c, workdir = _CONFIG.value, _WORKDIR.value
  if workdir is None:
    sys.exit('error: --workdir is required')
  steps.enable_compilation_cache()
  maybe_initialize_distributed()
  log = RunLog(workdir, enabled=jax.process_index() == 0)
  log.write_config(c.to_json_best_effort(indent=2))
  try:
    check_config(c, jax.device_count())
    status = train(c, workdir, log)
  except ConfigError as e:
    log.update(status='failed', error=str(e))
    sys.exit(f'error: {e}')
  except Diverged as e:
    log.update(status='diverged', error=str(e))
    sys.exit(f'diverged: {e}')
  except BaseException as e:
    log.update(status='failed', error=f'{type(e).__name__}: {e}'.splitlines()[0])
    raise
  log.update(status=status)
  log.close()
  if status == 'preempted':
    sys.exit(143)


def parse_flags(argv: list[str]) -> list[str]:
  """absl parsing, with config mistakes reported as one line instead of a traceback."""
  try:
    return flags.FLAGS(argv)
  except AttributeError as e:  # ml_collections: an override path the config does not have
    field = str(e).strip('"\'')
    sys.exit(f'error: unknown config field {field}; use a field defined in the --config file')
  except flags.Error as e:
    last = [line.strip() for line in str(e).splitlines() if line.strip()][-1]
    sys.exit(f'error: {last}')


if __name__ == '__main__':
  flags.mark_flag_as_required('config')
  app.run(main, flags_parser=parse_flags)
