"""The checks a run passes before it starts, shared by `scaling.train` at launch and by the dry run
of `experiments.sweep`, so a sweep refuses what its runs would refuse.

Every failure is a ConfigError naming the field and the fix.
"""

import math
import os

import jax
from ml_collections import config_dict

from scaling import optim, precision, sharding
from scaling.errors import ConfigError
from scaling.models import initialization, layer_stack
from scaling.tasks import TASKS

# Counts that must be at least 1 wherever a config has them: 0 or less divides by zero, loops
# forever, evaluates nothing or keeps no checkpoint.
POSITIVE = ('steps', 'batch_size', 'grad_accum', 'log_every', 'eval_every', 'eval_batches',
            'checkpoint_every', 'keep_checkpoints', 'seq_len', 'model.n_layer', 'model.d_model',
            'model.n_head', 'model.d_ff', 'model.vocab_size', 'model.seq_len', 'model.patch',
            'model.image_size', 'model.channels', 'model.mlp_ratio', 'model.freq_dim',
            'diffusion.eval_grid', 'diffusion.sample_steps', 'diffusion.n_samples')
NON_NEGATIVE = ('warmup_steps', 'init_step', 'weight_decay', 'grad_clip', 'peak_flops',
                'budget', 'model.num_classes')


def _get(c: config_dict.ConfigDict, path: str):
  node = c
  for key in path.split('.'):
    if not isinstance(node, config_dict.ConfigDict) or key not in node:
      return None
    node = node[key]
  return node


def check_fields(c: config_dict.ConfigDict, schedule: bool = True) -> None:
  """The value of each field on its own: no devices, no data, nothing read. `schedule=False`
  leaves out the schedule's checks against `steps`, for a sweep that has not set steps yet."""
  if c.task not in TASKS:
    raise ConfigError(f'task: unknown {c.task!r}; use one of {", ".join(TASKS)}')
  if c.dtype not in precision.DTYPES:
    raise ConfigError(f'dtype: unknown {c.dtype!r}; use one of {", ".join(precision.DTYPES)}')
  if c.get('attention', 'auto') not in precision.ATTENTION:
    raise ConfigError(f'attention: unknown {c.attention!r}; use one of '
                      f'{", ".join(precision.ATTENTION)}')
  if c.get('attention') == 'blocked' and c.task not in precision.CAUSAL_TASKS:
    raise ConfigError(f'attention: blocked is causal attention, and the {c.task} task attends '
                      'both ways; use auto or xla')
  remat = _get(c, 'model.remat')
  if remat is not None and remat not in layer_stack.REMAT:
    raise ConfigError(f'model.remat: unknown {remat!r}; use one of {", ".join(layer_stack.REMAT)}')
  for field in POSITIVE:
    value = _get(c, field)
    if value is not None and not value >= 1:
      raise ConfigError(f'{field}: {value} must be at least 1')
  for field in NON_NEGATIVE:
    value = _get(c, field)
    if value is not None and not value >= 0:
      raise ConfigError(f'{field}: {value} must be 0 or more')
  if not (math.isfinite(c.lr) and c.lr > 0):
    raise ConfigError(f'lr: {c.lr} must be a positive number (the peak learning rate)')
  for field in ('b1', 'b2'):
    if not 0 <= c[field] < 1:
      raise ConfigError(f'{field}: {c[field]} must be in [0, 1) (an Adam moment decay)')
  if not 0 <= c.min_lr_ratio <= 1:
    raise ConfigError(f'min_lr_ratio: {c.min_lr_ratio} must be in [0, 1]')
  dropout = _get(c, 'model.label_dropout')
  if dropout is not None and not 0 <= dropout < 1:
    raise ConfigError(f'model.label_dropout: {dropout} must be in [0, 1)')
  if c.init_from and not os.path.isdir(os.path.join(c.init_from, 'checkpoints')):
    raise ConfigError(f'init_from: {c.init_from!r} is not a run directory with checkpoints; give '
                      'the workdir of the run to fork from')
  _check_data_paths(c)
  initialization.check_parameterization(c.model)
  TASKS[c.task].check_config(c)
  if schedule:
    check_schedule(c)


def check_schedule(c: config_dict.ConfigDict) -> None:
  """The checks against `steps`: the learning-rate schedule's, and the task's own where it has
  them (`check_steps`; the LM's refuses more than max_epochs passes over its corpus)."""
  optim.check_config(c)
  if hasattr(TASKS[c.task], 'check_steps'):
    TASKS[c.task].check_steps(c)


def _check_data_paths(c: config_dict.ConfigDict) -> None:
  kind, sep, path = c.dataset.partition(':')
  if sep and kind != 'tfds' and not os.path.isdir(path):
    raise ConfigError(f'dataset: {path!r} (from {c.dataset!r}) is not a folder; give an existing '
                      f'folder after {kind}:')
  if c.data_dir and not os.path.isdir(c.data_dir):
    raise ConfigError(f'data_dir: {c.data_dir!r} is not a folder; give the folder holding the '
                      'prepared datasets, or leave it empty')


def check_launch(c: config_dict.ConfigDict, n_devices: int, n_processes: int) -> None:
  """check_fields, then the fit of the mesh and the batch on `n_devices` over `n_processes`."""
  check_fields(c)
  data, fsdp, _ = sharding.mesh_shape(c.mesh, n_devices)
  shards = data * fsdp * n_processes // math.gcd(data * fsdp, n_processes)
  if c.batch_size % (shards * c.grad_accum):
    raise ConfigError(f'batch_size: {c.batch_size} is not divisible by data*fsdp*grad_accum = '
                      f'{data * fsdp * c.grad_accum}; make it a multiple')


def check_platform(c: config_dict.ConfigDict, platform: str | None = None) -> None:
  """An explicit cuDNN attention needs what its kernel needs: a GPU and a 16-bit dtype. Checked
  where the run executes (scaling.train), not by a sweep's dry run on a login node."""
  if c.get('attention', 'auto') != 'cudnn':
    return
  platform = platform or jax.default_backend()
  if platform != 'gpu':
    raise ConfigError(f'attention: cudnn needs a GPU, and this host is {platform}; use auto or xla')
  if precision.compute_dtype(c.dtype, platform) != 'bfloat16':
    raise ConfigError(f'attention: cudnn needs bfloat16, and dtype is {c.dtype}; use '
                      '--config.dtype=bfloat16 or attention=xla')
