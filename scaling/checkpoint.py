"""Orbax checkpoints of the train state plus the data position and RNG seed, saved asynchronously.

Batches and per-step RNGs are pure functions of (seed, step), so the step and the seed are the
whole iterator and RNG state: restoring them makes a resumed run bit-exact.
"""

import os
import shutil
import time

import jax
import orbax.checkpoint as ocp
from etils import epath

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
    raise ConfigError(f'checkpoints: every checkpoint (steps {sorted(steps)}) is damaged (files '
                      'missing or cut short); rather than train from scratch silently, this stops: '
                      'restore checkpoints/ from a copy, or give a new workdir')
  return None, None


def read_meta(workdir: str, step: int) -> dict | None:
  """The meta item of checkpoint `step` (JSON, read without the arrays), or None if unreadable."""
  path = epath.Path(os.path.abspath(workdir)) / 'checkpoints' / str(step) / 'meta'
  try:
    return ocp.JsonCheckpointHandler().restore(path)
  except Exception:  # pylint: disable=broad-except  # missing or cut: the step is damaged
    return None


def _shapes(tree) -> dict[str, tuple]:
  """{'blocks/0/attn/wk': shape}: orbax's metadata keys list indices as strings, nnx's as ints."""
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  name = lambda k: str(getattr(k, 'key', getattr(k, 'idx', k)))
  return {'/'.join(name(k) for k in path): tuple(leaf.shape) for path, leaf in flat}


def saved_shapes(directory: str) -> dict[str, tuple] | None:
  """The shapes of the parameters saved in the checkpoint folder `directory`, read from orbax's
  metadata without the arrays; None when that is unreadable (the checkpoint is damaged)."""
  try:
    return _shapes(ocp.StandardCheckpointer().metadata(os.path.join(directory, 'state'))
                   .item_metadata['params'])
  except Exception:  # pylint: disable=broad-except  # missing or cut metadata
    return None


def mismatch(directory: str, abstract_state) -> str | None:
  """How the parameters saved in the checkpoint folder `directory` differ from the model's
  (another shape, vocabulary or width), or None when they match or the metadata is unreadable
  (a damaged checkpoint, which restoring reports)."""
  saved = saved_shapes(directory)
  if saved is None:
    return None
  wanted = _shapes(abstract_state['params'])
  differ = [f'{k}: {saved.get(k, "absent")} saved, {wanted.get(k, "absent")} in this model'
            for k in sorted(saved.keys() | wanted.keys()) if saved.get(k) != wanted.get(k)]
  if not differ:
    return None
  return f'{differ[0]}' + (f'; {len(differ) - 1} more parameters differ' if len(differ) > 1 else '')


def check_matches(workdir: str, abstract_state) -> None:
  """Refuses, before anything is written or restored, a model that the run's checkpoints were not
  saved from: their files are intact, so this is never reported as damage."""
  folder = os.path.join(os.path.abspath(workdir), 'checkpoints')
  steps = sorted(int(n) for n in os.listdir(folder) if n.isdigit()) if os.path.isdir(folder) else []
  for step in steps:
    why = mismatch(os.path.join(folder, str(step)), abstract_state)
    if why:
      raise ConfigError(f'checkpoints: step {step} holds another model than this config builds '
                        f'({why}); the checkpoint is intact, not damaged: rerun with the config it '
                        'was trained with (kept in its checkpoints; see config.json), or give a new '
                        'workdir')


def check_fork(c, abstract_state) -> None:
  """init_from's checkpoint at init_step exists and holds this model's parameters: checked before
  the new run's directory is made, so a refused fork leaves nothing behind."""
  mngr = manager(c.init_from, keep=None, create=False)
  if c.init_step not in mngr.all_steps():
    raise ConfigError(f'init_step: {c.init_from} has no checkpoint at step {c.init_step}; it has '
                      f'{sorted(mngr.all_steps())}')
  directory = os.path.join(str(mngr.directory), str(c.init_step))
  if saved_shapes(directory) is None or read_meta(c.init_from, c.init_step) is None:
    raise ConfigError(f'init_from: the checkpoint at step {c.init_step} of {c.init_from} is '
                      'damaged (files missing or cut short); fork from another of its steps')
  why = mismatch(directory, abstract_state)
  if why:
    raise ConfigError(f'init_from: step {c.init_step} of {c.init_from} holds another model than '
                      f'this config builds ({why}); fork a run of the same shape and vocabulary')


def restore_fork(c, abstract_state):
  """The state at step c.init_step of the run in c.init_from: where a cooldown branch starts."""
  return restore(manager(c.init_from, keep=None, create=False), abstract_state, c.init_step)


def abstract(state_shapes, shardings):
  """ShapeDtypeStructs carrying the target shardings, for restoring straight onto the mesh."""
  return jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                      state_shapes, shardings)
