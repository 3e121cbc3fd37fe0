"""Orbax checkpoints of the train state plus the data position and RNG seed, saved asynchronously.

Batches and per-step RNGs are pure functions of (seed, step), so the step and the seed are the
whole iterator and RNG state: restoring them makes a resumed run bit-exact.
"""

import os
import shutil
import time

import jax
import orbax.checkpoint as ocp

from scaling.errors import ConfigError


def manager(workdir: str, keep: int | None, create: bool = True) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=create,
                                         enable_async_checkpointing=True)
  return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), 'checkpoints'),
                               options=options, item_names=('state', 'meta'))


def save(mngr: ocp.CheckpointManager, step: int, state, seed: int, window: list[dict],
         **extra) -> None:
  """`window`: the metrics of the steps since the last metrics row, to log them after a resume;
  `extra`: more JSON fields for the meta item (the run directory's own bookkeeping)."""
  meta = {'step': step, 'data_position': step, 'seed': seed, 'metrics_window': window, **extra}
  mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                          meta=ocp.args.JsonSave(meta)))


def restore(mngr: ocp.CheckpointManager, abstract_state, step: int | None = None):
  """(state placed with abstract_state's shardings, meta), or (None, None) with no checkpoint."""
  step = mngr.latest_step() if step is None else step
  if step is None:
    return None, None
  restored = mngr.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()))
  return restored['state'], restored['meta']


def restore_latest(mngr: ocp.CheckpointManager, abstract_state, quarantine: str | None, warn):
  """The newest checkpoint that restores, as restore() gives it, or (None, None) with none saved.

  A damaged one (a truncated array file, missing metadata) is reported through `warn` in one line
  and the previous one is tried. Once one restores, the damaged ones are moved into `quarantine`
  (by the process that writes, when it is not None) so that their steps can be saved again. When
  every one is damaged this raises and moves nothing, so that no later run starts from scratch.
  """
  steps = sorted(mngr.all_steps(), reverse=True)
  for i, step in enumerate(steps):
    try:
      restored = restore(mngr, abstract_state, step)
    except Exception as e:  # orbax and TensorStore raise many types; every one means "unusable"
      why = next((line.strip() for line in str(e).splitlines() if line.strip()), '')
      why = why.split(' See full')[0]  # TensorStore appends a bound-method repr
      then = f'falling back to step {steps[i + 1]}' if i + 1 < len(steps) else 'no older one'
      warn(f'checkpoint step {step} is damaged ({type(e).__name__}: {why[:200]}); {then}')
      continue
    if i and quarantine is not None:
      os.makedirs(quarantine, exist_ok=True)
      for damaged in steps[:i]:
        shutil.move(os.path.join(str(mngr.directory), str(damaged)),
                    os.path.join(quarantine, f'{damaged}-{int(time.time())}'))
      mngr.reload()  # forget the moved steps, so that they can be saved again
    return restored
  if steps:
    raise ConfigError(f'checkpoints: every checkpoint (steps {sorted(steps)}) is damaged; rather '
                      'than train from scratch silently, this stops: repair or remove '
                      'checkpoints/, or give a new workdir')
  return None, None


def restore_fork(c, abstract_state):
  """The state at step c.init_step of the run in c.init_from: where a cooldown branch starts."""
  mngr = manager(c.init_from, keep=None, create=False)
  if c.init_step not in mngr.all_steps():
    raise ConfigError(f'init_step: {c.init_from} has no checkpoint at step {c.init_step}; it has '
                      f'{sorted(mngr.all_steps())}')
  return restore(mngr, abstract_state, c.init_step)


def abstract(state_shapes, shardings):
  """ShapeDtypeStructs carrying the target shardings, for restoring straight onto the mesh."""
  return jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                      state_shapes, shardings)
