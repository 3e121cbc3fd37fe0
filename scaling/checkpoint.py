"""Orbax checkpoints of the train state plus the data position and RNG seed, saved asynchronously.

Batches and per-step RNGs are pure functions of (seed, step), so the step and the seed are the
whole iterator and RNG state: restoring them makes a resumed run bit-exact.
"""

import os

import jax
import orbax.checkpoint as ocp

from scaling.errors import ConfigError


def manager(workdir: str, keep: int | None, create: bool = True) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=create,
                                         enable_async_checkpointing=True)
  return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), 'checkpoints'),
                               options=options, item_names=('state', 'meta'))


def save(mngr: ocp.CheckpointManager, step: int, state, seed: int, window: list[dict]) -> None:
  """`window`: the metrics of the steps since the last metrics row, to log them after a resume."""
  meta = {'step': step, 'data_position': step, 'seed': seed, 'metrics_window': window}
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
