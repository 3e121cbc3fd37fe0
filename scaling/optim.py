"""AdamW with global-norm clipping and warmup + cosine, constant or WSD learning-rate schedules,
and optional per-parameter learning-rate multipliers (μP's; scaling/models/initialization.py).
"""

from typing import Callable

import jax
import jax.numpy as jnp
import optax
from ml_collections import config_dict

from scaling.errors import ConfigError

SCHEDULES = ('cosine', 'constant', 'wsd')
COOLDOWN_SHAPES = ('linear', 'sqrt', 'cosine')


def check_config(c: config_dict.ConfigDict) -> None:
  if c.schedule not in SCHEDULES:
    raise ConfigError(f'schedule: unknown {c.schedule!r}; use one of {", ".join(SCHEDULES)}')
  if c.cooldown_shape not in COOLDOWN_SHAPES:
    raise ConfigError(f'cooldown_shape: unknown {c.cooldown_shape!r}; '
                      f'use one of {", ".join(COOLDOWN_SHAPES)}')
  if not 0 <= c.warmup_steps <= c.steps:
    raise ConfigError(f'warmup_steps: {c.warmup_steps} must be in [0, steps={c.steps}]')


def _cooldown(progress: jax.Array, shape: str) -> jax.Array:
  """Multiplier falling from 1 at progress 0 to 0 at progress 1."""
  if shape == 'sqrt':
    return 1.0 - jnp.sqrt(progress)
  if shape == 'cosine':
    return 0.5 * (1.0 + jnp.cos(jnp.pi * progress))
  return 1.0 - progress


def schedule(c: config_dict.ConfigDict) -> optax.Schedule:
  """lr at optimizer step s (0-based): linear warmup, then the chosen decay to lr * min_lr_ratio."""
  decay_start = c.steps - round(c.cooldown_fraction * c.steps) if c.schedule == 'wsd' else c.warmup_steps
  floor = c.min_lr_ratio

  def lr(step):
    step = jnp.asarray(step, jnp.float32)
    warm = jnp.minimum(1.0, (step + 1) / max(c.warmup_steps, 1))
    progress = jnp.clip((step - decay_start) / max(c.steps - decay_start, 1), 0.0, 1.0)
    if c.schedule == 'constant':
      return c.lr * warm
    shape = 'cosine' if c.schedule == 'cosine' else c.cooldown_shape
    return c.lr * warm * (floor + (1 - floor) * _cooldown(progress, shape))

  return lr


def _decay_mask(params):
  return jax.tree.map(lambda p: p.ndim >= 2, params)  # no weight decay on norm scales


def scale_by_multiplier(multiplier: Callable) -> optax.GradientTransformation:
  """Each update times multiplier(its key path), a Python float fixed at trace time."""
  return optax.stateless(lambda updates, _: jax.tree_util.tree_map_with_path(
      lambda path, u: u * multiplier(path), updates))


def make(c: config_dict.ConfigDict, lr_multiplier: Callable | None = None
         ) -> optax.GradientTransformation:
  """lr_multiplier: parameter path -> factor on its learning rate (None: 1 everywhere).

  The factor multiplies AdamW's whole step, decoupled weight decay included, so a parameter
  decays by lr · multiplier · weight_decay per step: weight_decay stays the decay per unit of
  that parameter's own learning rate, as in PyTorch's AdamW with per-group learning rates and
  the `mup` package's MuAdamW.
  """
  adamw = [optax.clip_by_global_norm(c.grad_clip),
           optax.adamw(schedule(c), b1=c.b1, b2=c.b2, weight_decay=c.weight_decay,
                       mask=_decay_mask)]
  if lr_multiplier is not None:
    adamw.append(scale_by_multiplier(lr_multiplier))
  return optax.chain(*adamw)
