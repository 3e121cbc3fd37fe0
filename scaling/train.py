"""The one training loop, for every task.

  python -m scaling.train --config=configs/lm.py:size=tiny --workdir=DIR [--config.steps=...]

Reads top to bottom: checks (scaling.checks), data, the run directory (scaling.rundir: locked,
config compared, nothing written before), mesh, state, step functions, then the loop. Rerunning
with the same workdir resumes from the latest valid checkpoint; `--verbose` shows the traceback
behind a one-line error.
"""

import json
import math
import os
import signal
import sys

import jax
import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

from scaling import checkpoint, checks, configfile, precision, sharding, steps
from scaling.errors import ConfigError
from scaling.metrics import Accounting, final_values
from scaling.rundir import RunDir, environment, stored_record
from scaling.tasks import TASKS

_CONFIG = config_flags.DEFINE_config_file('config', None, 'configs/<task>.py:<arg>', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'run directory (created; resumed if it exists)')
_COORDINATOR = flags.DEFINE_string('coordinator_address', None, 'host:port of process 0')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'processes in a multi-process run')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'this process, in [0, num_processes)')
_VERBOSE = flags.DEFINE_bool('verbose', False, 'show the traceback behind a one-line error')


def maybe_initialize_distributed() -> None:
  if _NUM_PROCESSES.value and _NUM_PROCESSES.value > 1:
    jax.distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  elif int(os.environ.get('SLURM_NTASKS', '1')) > 1:
    jax.distributed.initialize()  # reads the coordinator and ranks from SLURM's variables


# ----------------------------------------------------------------------------------------------
# The loop.
# ----------------------------------------------------------------------------------------------
def train(c, rundir: RunDir, data, mesh: jax.sharding.Mesh, fns: steps.StepFns) -> str:
  task = TASKS[c.task]
  described = task.describe(c)
  rundir.update(status='running', error=None, **described, **environment(c, mesh, data))

  state, meta = rundir.restore(fns.abstract_state)  # a damaged checkpoint: the one before it
  forked = state is None and bool(c.init_from)
  rundir.start_metrics(meta, meta['step'] if meta else c.init_step if forked else 0, c.steps)
  if forked:
    state, meta = checkpoint.restore_fork(c, fns.abstract_state)
    rundir.update(forked_from={'workdir': os.path.abspath(c.init_from), 'step': c.init_step})
  state, start = (fns.init(), 0) if state is None else (state, meta['step'])
  if start >= c.steps:  # a finished run, started again: nothing to train
    if not forked and (rundir.run.get('final') or {}).get('step') != start:
      # Killed between its last checkpoint and its end: the checkpoint holds the rows since the
      # one before, the last train and eval rows among them.
      task.finish(fns.model(state), c, rundir.workdir)
      rundir.update(final=final_values(json.loads(row) for row in meta['metrics_rows']))
    return 'completed'

  eval_batches = [sharding.global_batch(b, mesh) for b in data.eval_batches()]
  accounting = Accounting(c, described, mesh)
  if meta is not None and not forked:
    accounting.resume_window(meta['metrics_window'])
  if start == 0 or forked:
    rundir.log(accounting.eval_row(start, fns.evaluate(state, eval_batches)))

  for step in range(start, c.steps):
    batch = sharding.global_batch(data.train_batch(step), mesh)
    state, metrics = fns.train_step(state, batch, step)
    done = step + 1
    evaluate = done % c.eval_every == 0 or done == c.steps
    _log_train(accounting.add(done, metrics, close=evaluate), rundir)
    if evaluate:
      _log_train(accounting.flush(), rundir)
      rundir.log(accounting.eval_row(done, fns.evaluate(state, eval_batches)))
    # Read once: a signal between two reads must not skip the save. A signal during the last
    # step is no preemption: the run is trained, so it finishes (a preempted run resumed at its
    # end would restore and return without its `final` and its task's outputs).
    stop = bool(STOP_SIGNALS) and done < c.steps
    if done % c.checkpoint_every == 0 or done == c.steps or stop:
      _log_train(accounting.flush(), rundir)  # rows up to `done` are on disk before it
      rundir.checkpoint(done, state, c.seed, accounting.open_window())
    if stop:
      return 'preempted'
  rundir.mngr.wait_until_finished()  # the last step always checkpointed above, flushing its rows
  task.finish(fns.model(state), c, rundir.workdir)
  rundir.update(final=accounting.final)
  return 'completed'


class Diverged(RuntimeError):
  pass


def _log_train(rows: list[dict], rundir: RunDir) -> None:
  for row in rows:
    rundir.log(row)
    if not math.isfinite(row['train_loss']):
      raise Diverged(f'train_loss is {row["train_loss"]} at step {row["step"]}')


STOP_SIGNALS: list[int] = []  # SIGTERM or SIGINT received: checkpoint after this step and stop


def _catch_stop_signals() -> None:
  """SIGTERM (preemption, scancel) and SIGINT (Ctrl-C) both end the run at the next step's end,
  with a checkpoint and `preempted`, instead of killing it mid-write."""
  for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, lambda number, _: STOP_SIGNALS.append(number))


# ----------------------------------------------------------------------------------------------
# Entry point: a run directory always ends with a status.
# ----------------------------------------------------------------------------------------------
def main(argv) -> None:
  del argv
  logging.set_verbosity(logging.ERROR)  # orbax logs every save, and what it looks for, below
  c, workdir = _CONFIG.value, _WORKDIR.value
  if not workdir:
    sys.exit('error: --workdir is required; give the run directory to create or resume')
  steps.enable_compilation_cache()
  maybe_initialize_distributed()
  try:  # bad input stops here, with nothing written
    checks.check_launch(c, jax.device_count(), jax.process_count())
    checks.check_platform(c)
    # The run's record keeps the dtype and attention kernel computed with; a resume keeps them.
    precision.resolve(c, stored_record(workdir)[1])
    data = TASKS[c.task].make_data(c, jax.process_index(), jax.process_count())  # reads only
    mesh = sharding.make_mesh(c.mesh)
    fns = steps.build(c, TASKS[c.task], mesh)
    if c.init_from:
      check_fork(c, fns.abstract_state, data.inputs)
    _catch_stop_signals()  # before run.json says running: a signal from here on is a save
    rundir = _open_everywhere(workdir, c, data.inputs, fns.abstract_state)
  except ConfigError as e:
    _fail(f'error: {e}')
  except KeyboardInterrupt:
    sys.exit('interrupted before training started; nothing was written')
  try:
    status, fields, message = train(c, rundir, data, mesh, fns), {}, None
  except ConfigError as e:
    status, fields, message = 'failed', {'error': str(e)}, f'error: {e}'
  except Diverged as e:
    status, fields, message = 'diverged', {'error': str(e)}, f'diverged: {e}'
  except BaseException as e:
    rundir.close('failed', error=f'{type(e).__name__}: {e}'.splitlines()[0])
    raise
  rundir.close(status, **fields)
  if message:
    _fail(message)
  if status == 'preempted':
    sys.exit(128 + STOP_SIGNALS[0])  # 143 for SIGTERM, 130 for SIGINT, as the shell reports them


def _fail(message: str) -> None:
  if _VERBOSE.value and sys.exc_info()[0] is not None:
    raise  # pylint: disable=misplaced-bare-raise
  sys.exit(message)


def check_fork(c, abstract_state, inputs: dict) -> None:
  """The run forked from holds this model's parameters and was trained with this tokenizer."""
  checkpoint.check_fork(c, abstract_state)
  source = stored_record(c.init_from)[2] or {}
  if source.get('tokenizer') and source['tokenizer'] != inputs['tokenizer']:
    raise ConfigError(f'init_from: {c.init_from} was trained with the tokenizer '
                      f'{source["tokenizer"]}, and {c.dataset} has {inputs["tokenizer"]}; fork '
                      'onto data of the same tokenizer')


def _open_everywhere(workdir: str, c, inputs: dict, abstract_state) -> RunDir:
  """RunDir.open on every process; process 0 (the writer) decides for all of them."""
  if jax.process_count() == 1:
    return RunDir.open(workdir, c, True, inputs, abstract_state)
  from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel
  try:
    rundir = RunDir.open(workdir, c, jax.process_index() == 0, inputs, abstract_state)
    error = None
  except ConfigError as e:
    rundir, error = None, e
  ok = bool(multihost_utils.broadcast_one_to_all(np.int32(error is None)))
  if error is not None:
    raise error
  if not ok:
    rundir.close()
    raise ConfigError(f'workdir: process 0 could not open {workdir}; see its output')
  return rundir


def parse_flags(argv: list[str]) -> list[str]:
  """absl parsing, with config mistakes reported as one line instead of a traceback."""
  try:
    rest = flags.FLAGS(configfile.resolve_flag(argv))
    _CONFIG.value  # pylint: disable=pointless-statement  # loads the file: its errors surface here
    return rest
  except ConfigError as e:
    sys.exit(f'error: {e}')
  except AttributeError as e:  # ml_collections: an override path the config does not have
    field = str(e).strip('"\'')
    sys.exit(f'error: unknown config field {field}; use a field defined in the --config file')
  except flags.Error as e:
    last = [line.strip() for line in str(e).splitlines() if line.strip()][-1]
    sys.exit(f'error: {last}')
  except (ValueError, TypeError) as e:  # raised by the config file's get_config(arg)
    sys.exit(f'error: --config: {e}')


if __name__ == '__main__':
  flags.mark_flag_as_required('config')
  app.run(main, flags_parser=parse_flags)
