"""Orbax checkpoints of the train state plus the data position and RNG seed, saved asynchronously.

Batches and per-step RNGs are pure functions of (seed, step), so the step and the seed are the
whole iterator and RNG state: restoring them makes a resumed run bit-exact.
"""

import os

import jax
import orbax.checkpoint as ocp


def manager(workdir: str, keep: int) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                         enable_async_checkpointing=True)
  return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), 'checkpoints'),
                               options=options, item_names=('state', 'meta'))


def save(mngr: ocp.CheckpointManager, step: int, state, seed: int) -> None:
  meta = {'step': step, 'data_position': step, 'seed': seed}
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


def abstract(state_shapes, shardings):
  """ShapeDtypeStructs carrying the target shardings, for restoring straight onto the mesh."""
  return jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                      state_shapes, shardings)
