"""The jitted functions of training: state init, the train step and the eval step, with explicit
in/out shardings. The loop and the benchmarks both use these.

The state is {'params': pure dict, 'opt': optax state}. The optimizer state gets the parameters'
shardings through optax.tree_map_params: jit(tx.init) alone would replicate the Adam moments.
"""

import dataclasses
import math
import os
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from scaling import checkpoint, optim, sharding
from scaling.models import initialization
from scaling.errors import ConfigError

State = dict


def enable_compilation_cache() -> None:
  """Sweeps, reruns and tests compile the same programs again; XLA's disk cache saves that."""
  if not jax.config.jax_compilation_cache_dir:
    jax.config.update('jax_compilation_cache_dir', os.path.expanduser('~/.cache/scaling/xla'))


@dataclasses.dataclass
class StepFns:
  init: Callable[[], State]
  train_step: Callable[[State, dict, int], tuple[State, dict]]
  evaluate: Callable[[State, list[dict]], dict]
  model: Callable[[State], nnx.Module]
  abstract_state: State  # ShapeDtypeStructs carrying the shardings
  shardings: State


def _check_divisible(shapes, shardings) -> None:
  for path, shape, sh in zip(*_paths_and_leaves(shapes), jax.tree.leaves(shardings)):
    for dim, axes in zip(shape.shape, sh.spec):
      size = np.prod([sh.mesh.shape[a] for a in np.atleast_1d(axes)]) if axes else 1
      if dim % size:
        raise ConfigError(f'mesh: parameter {path} has a dimension of {dim}, not divisible by '
                          f'the {size} devices of mesh axes {axes}; change the model shape or mesh')


def _paths_and_leaves(tree):
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return [jax.tree_util.keystr(p) for p, _ in flat], [leaf for _, leaf in flat]


def accumulate(grad_fn, params, batch: dict, rng: jax.Array, n: int, noise: bool = False):
  """Mean (loss, aux, grads) over n microbatches; each microbatch spans every batch shard.

  The fourth value is, with `noise` (and n > 1), the microbatches' mean squared gradient norm:
  the small batch's |G|² of `noise_scale_parts`; None otherwise.
  """
  if n == 1:
    (loss, aux), grads = grad_fn(params, batch, rng)
    return loss, aux, grads, None
  micro = jax.tree.map(lambda x: x.reshape(x.shape[0] // n, n, *x.shape[1:]).swapaxes(0, 1), batch)

  def body(total, i_and_batch):
    i, microbatch = i_and_batch
    (loss, aux), grads = grad_fn(params, microbatch, jax.random.fold_in(rng, i))
    sq_norm = optax.tree.norm(grads, squared=True) if noise else jnp.zeros((), jnp.float32)
    return jax.tree.map(jnp.add, total, (loss, aux, grads, sq_norm)), None

  first = jax.tree.map(lambda x: x[0], micro)
  zeros = jax.tree.map(jnp.zeros_like,
                       jax.eval_shape(lambda: _flat_out(grad_fn(params, first, rng))))
  total, _ = jax.lax.scan(body, (*zeros, jnp.zeros((), jnp.float32)), (jnp.arange(n), micro))
  loss, aux, grads, sq_norm = jax.tree.map(lambda x: x / n, total)
  return loss, aux, grads, sq_norm if noise else None


def _flat_out(out):
  (loss, aux), grads = out
  return loss, aux, grads


def shard_gradients(grad_fn, params, batch: dict, rng: jax.Array, mesh: jax.sharding.Mesh):
  """Mean (loss, aux, grads) over the batch's data shards, each shard's gradient taken on the rows
  it holds (a contiguous block: the batch sharding's split), and the shards' mean squared gradient
  norm. Shard j draws its randomness from fold_in(rng, j): for the diffusion task (the LM's loss
  draws none) the noise draws then depend on the number of shards, not their distribution."""
  k = batch_shards(mesh)
  blocks = jax.tree.map(lambda x: x.reshape(k, x.shape[0] // k, *x.shape[1:]), batch)
  blocks = jax.lax.with_sharding_constraint(blocks, sharding.batch_sharding(mesh))
  keys = jax.vmap(lambda j: jax.random.fold_in(rng, j))(jnp.arange(k))
  (loss_K, aux), grads = jax.vmap(grad_fn, in_axes=(None, 0, 0))(params, blocks, keys)
  sq_norm_K = jax.vmap(lambda g: optax.tree.norm(g, squared=True))(grads)
  mean = lambda x: x.mean(axis=0)
  return mean(loss_K), jax.tree.map(mean, aux), jax.tree.map(mean, grads), mean(sq_norm_K)


def noise_scale_parts(small_sq_norm, big_sq_norm, b_small: float, b_big: float) -> dict:
  """McCandlish et al. 2018 (App. A): the unbiased estimates of |G|² (the true gradient's squared
  norm) and tr(Σ) (the per-example gradient covariance's trace) from the squared gradient norms
  at two batch sizes, in examples. Linear in the norms, so means over steps stay unbiased; their
  ratio B_simple = tr(Σ)/|G|² is taken after averaging (scaling.metrics)."""
  true_sq_norm = (b_big * big_sq_norm - b_small * small_sq_norm) / (b_big - b_small)
  cov_trace = (small_sq_norm - big_sq_norm) / (1 / b_small - 1 / b_big)
  return {'grad_cov_trace': cov_trace, 'grad_true_sq_norm': true_sq_norm}


def batch_shards(mesh: jax.sharding.Mesh) -> int:
  return math.prod(mesh.shape[a] for a in np.atleast_1d(sharding.RULES['batch']))


def noise_scale_groups(c, n_batch_shards: int) -> int:
  """How many groups of the batch the gradient noise scale compares with the whole batch: the
  microbatches under accumulation, else the data shards; 0 when `log_grad_noise_scale` is off."""
  if not c.get('log_grad_noise_scale', False):  # a run whose config predates the switch: off
    return 0
  if c.grad_accum > 1:
    return c.grad_accum
  if n_batch_shards > 1:
    return n_batch_shards
  raise ConfigError('log_grad_noise_scale: the gradient noise scale compares two batch sizes, and '
                    'this step has one (grad_accum = 1 on one data shard); set --config.grad_accum '
                    'to 2 or more, or train on more than one data shard (mesh.data x mesh.fsdp)')


def build(c, task, mesh: jax.sharding.Mesh) -> StepFns:
  abstract_model = nnx.eval_shape(lambda: task.make_model(c, nnx.Rngs(c.seed)))
  graphdef, abstract_params = nnx.split(abstract_model)
  logical_specs = nnx.to_pure_dict(nnx.get_partition_spec(abstract_params))
  param_sh = sharding.logical_to_sharding(logical_specs, mesh)
  param_shapes = nnx.to_pure_dict(abstract_params)
  _check_divisible(param_shapes, param_sh)
  tx = optim.make(c, initialization.lr_multiplier(c.task, c.model))  # None under sp
  opt_shapes = jax.eval_shape(tx.init, param_shapes)
  opt_sh = optax.tree_map_params(tx, lambda _, s: s, opt_shapes, param_sh,
                                 transform_non_params=lambda _: sharding.replicated(mesh))
  state_sh = {'params': param_sh, 'opt': opt_sh}
  batch_sh, repl = sharding.batch_sharding(mesh), sharding.replicated(mesh)
  model = lambda params: nnx.merge(graphdef, params)

  def init() -> State:
    params = nnx.to_pure_dict(nnx.state(task.make_model(c, nnx.Rngs(c.seed))))
    return {'params': params, 'opt': tx.init(params)}

  grad_fn = jax.value_and_grad(lambda p, b, r: task.loss_fn(model(p), b, r), has_aux=True)
  noise_groups = noise_scale_groups(c, batch_shards(mesh))

  def train_step(state: State, batch: dict, step: jax.Array) -> tuple[State, dict]:
    rng = jax.random.fold_in(jax.random.key(c.seed), step)
    if noise_groups and c.grad_accum == 1:
      loss, aux, grads, small_sq_norm = shard_gradients(grad_fn, state['params'], batch, rng, mesh)
    else:
      loss, aux, grads, small_sq_norm = accumulate(grad_fn, state['params'], batch, rng,
                                                   c.grad_accum, noise=bool(noise_groups))
    updates, opt = tx.update(grads, state['opt'], state['params'])
    params = optax.apply_updates(state['params'], updates)
    metrics = {'train_loss': loss, 'grad_norm': optax.tree.norm(grads), **aux}
    if noise_groups:
      metrics |= noise_scale_parts(small_sq_norm, optax.tree.norm(grads, squared=True),
                                   c.batch_size / noise_groups, c.batch_size)
    return {'params': params, 'opt': opt}, metrics

  eval_step = jax.jit(lambda params, batch: task.eval_fn(model(params), batch),
                      in_shardings=(param_sh, batch_sh), out_shardings=repl)

  def evaluate(state: State, batches: list[dict]) -> dict:
    outs = jax.device_get([eval_step(state['params'], b) for b in batches])
    return jax.tree.map(lambda *xs: np.mean(np.stack(xs), axis=0), *outs)

  return StepFns(
      init=jax.jit(init, out_shardings=state_sh),
      train_step=jax.jit(train_step, in_shardings=(state_sh, batch_sh, repl),
                         out_shardings=(state_sh, repl), donate_argnums=0),
      evaluate=evaluate,
      model=lambda state: model(state['params']),
      abstract_state=checkpoint.abstract({'params': param_shapes, 'opt': opt_shapes}, state_sh),
      shardings=state_sh,
  )
