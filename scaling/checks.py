"""The checks a run passes before it starts, shared by `scaling.train` at launch and by the dry run
of `experiments.sweep`, so a sweep refuses what its runs would refuse.

Every failure is a ConfigError naming the field and the fix.
"""

import math
import os

import jax
from ml_collections import config_dict

from configs import dit as dit_config
from configs import lm as lm_config
from scaling import optim, precision, run_identity, sharding, steps
from scaling.data import spec
from scaling.errors import ConfigError
from scaling.models import initialization, layer_stack
from scaling.tasks import TASKS

# The rules a config module's CHECKS may name (configs/common.py): (holds, what it says otherwise).
RULES = {
    'count': (lambda v: v >= 1, 'must be at least 1'),
    'non_negative': (lambda v: v >= 0, 'must be 0 or more'),
    'positive': (lambda v: v > 0, 'must be a positive number'),
    'unit_closed': (lambda v: 0 <= v <= 1, 'must be in [0, 1]'),
    'unit_open': (lambda v: 0 <= v < 1, 'must be in [0, 1)'),
}
CONFIGS = {'lm': lm_config, 'diffusion': dit_config}  # each task's config module
_MISSING = object()


def _get(c: config_dict.ConfigDict, path: str):
  node = c
  for key in path.split('.'):
    if not isinstance(node, config_dict.ConfigDict) or key not in node:
      return _MISSING
    node = node[key]
  return node


def declared_checks(module) -> dict[str, str]:
  """A config module's CHECKS, each field proven to exist in its default config and each rule
  known: a typo in a field name fails here, at import, rather than checking nothing."""
  default = module.get_config()
  for field, rule in module.CHECKS.items():
    if _get(default, field) is _MISSING:
      raise ImportError(f'{module.__file__}: CHECKS names {field!r}, which its config lacks; fix '
                        'the name')
    if rule not in RULES:
      raise ImportError(f'{module.__file__}: CHECKS gives {field!r} the unknown rule {rule!r}; '
                        f'use one of {", ".join(RULES)}')
  return dict(module.CHECKS)


def fields_exist(fields: tuple[str, ...], where: str) -> None:
  """Every field is in some task's default config (for lists of field names kept elsewhere)."""
  defaults = [module.get_config() for module in CONFIGS.values()]
  for field in fields:
    if all(_get(d, field) is _MISSING for d in defaults):
      raise ImportError(f'{where} names {field!r}, which no config has; fix the name')


DECLARED = {task: declared_checks(module) for task, module in CONFIGS.items()}
fields_exist(run_identity.MUTABLE + run_identity.MOVABLE, 'scaling/run_identity.py')


def _leaves(d, prefix: str = ''):
  for key, value in d.items():
    if isinstance(value, (dict, config_dict.ConfigDict)):
      yield from _leaves(value, f'{prefix}{key}.')
    else:
      yield f'{prefix}{key}', value


def check_numbers(c: config_dict.ConfigDict) -> None:
  """Every float finite, then each declared bound (a declared field the config lacks is refused)."""
  for field, value in _leaves(c):
    if isinstance(value, float) and not math.isfinite(value):
      raise ConfigError(f'{field}: {value} is not a finite number; give a finite value')
  for field, rule in DECLARED[c.task].items():
    value = _get(c, field)
    if value is _MISSING:
      raise ConfigError(f'{field}: missing from the config; start from configs/ and override it')
    holds, says = RULES[rule]
    if not holds(value):
      raise ConfigError(f'{field}: {value} {says}')


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
  if c.model.remat not in layer_stack.REMAT:
    raise ConfigError(f'model.remat: unknown {c.model.remat!r}; use one of '
                      f'{", ".join(layer_stack.REMAT)}')
  check_numbers(c)
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
  spec.check_folder(spec.parse(c.dataset, family=TASKS[c.task].DATA))
  if c.data_dir and not os.path.isdir(c.data_dir):
    raise ConfigError(f'data_dir: {c.data_dir!r} is not a folder; give the folder holding the '
                      'prepared datasets, or leave it empty')


def check_launch(c: config_dict.ConfigDict, n_devices: int, n_processes: int) -> None:
  """check_fields, then the fit of the mesh and the batch on `n_devices` over `n_processes`."""
  check_fields(c)
  data, fsdp, _ = sharding.mesh_shape(c.mesh, n_devices)
  steps.noise_scale_groups(c, data * fsdp)  # the noise scale needs a second batch size
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
