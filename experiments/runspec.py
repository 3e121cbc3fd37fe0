"""A sweep file resolved into runs: each run's config, overrides, steps, and its (N, D, C).

A sweep file (configs/sweeps/NAME.py) defines `get_sweep() -> dict` with

  name        the study; DIR/sweep.json records it, so one outdir holds one study
  convention  'chinchilla' (default) or 'kaplan': the FLOP convention of `budget`
  runs        a list of dicts, each with
    name              the run directory under --outdir (letters, digits, . _ - = +)
    config            'configs/lm.py:size=nano'; a relative path is relative to the repo root
    overrides         {config field path: value}, passed as --config.FIELD=VALUE
    budget            optional: training FLOPs; steps = round(budget / FLOPs per step)
    tokens_per_param  optional: steps = round(ratio * n_params / tokens per step)
    fork              optional: {'trunk': NAME, 'step': S}, a WSD cooldown branch that starts from
                      run NAME's checkpoint at step S (NAME must come earlier in `runs`)

Steps come from the task's own `describe` (the numbers run.json will record), so the FLOP
arithmetic lives here and not in the configs. A branch counts tokens and FLOPs from step 0, its
trunk's included; `spent` is what the run itself computes.
"""

import dataclasses
import importlib.util
import os
import re

from ml_collections import config_dict

from scaling import flops, optim
from scaling.errors import ConfigError
from scaling.tasks import TASKS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_KEYS = ('name', 'config', 'overrides', 'budget', 'tokens_per_param', 'fork')
_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9._=+-]*')


@dataclasses.dataclass(frozen=True)
class Run:
  name: str
  config: str  # file:arg, as the sweep file wrote it
  overrides: dict  # every --config.FIELD this run gets, steps included
  trunk: str | None  # the run whose checkpoint this one starts from
  n_params: int
  n_params_nonembedding: int
  tokens: int  # D, counted from step 0
  flops: float  # C under the sweep's convention, counted from step 0
  spent: float  # FLOPs this run computes itself (a branch: only after its fork)

  def identity(self) -> dict:
    """What must match for a rerun to continue this run rather than a different one."""
    return {'config': self.config, 'overrides': self.overrides, 'trunk': self.trunk}

  def args(self, outdir: str) -> list[str]:
    """scaling.train's arguments; a branch's init_from points at its trunk in the same outdir."""
    overrides = dict(self.overrides)
    if self.trunk:
      overrides['init_from'] = os.path.join(os.path.abspath(outdir), self.trunk)
    return [f'--workdir={os.path.join(os.path.abspath(outdir), self.name)}',
            f'--config={config_path(self.config)}',
            *(f'--config.{k}={_flag_value(v)}' for k, v in overrides.items())]


@dataclasses.dataclass(frozen=True)
class Sweep:
  name: str
  file: str
  convention: str
  runs: list[Run]

  def run(self, name: str) -> Run:
    return next(r for r in self.runs if r.name == name)


def _flag_value(value) -> str:
  return repr(value) if isinstance(value, float) else str(value)


def config_path(spec: str) -> str:
  """The config file (made absolute against the repo root) with its argument."""
  path, sep, arg = spec.partition(':')
  return os.path.join(ROOT, path) + sep + arg


def _import(path: str, what: str):
  if not os.path.isfile(path):
    raise ConfigError(f'{what}: no file {path}; give a path relative to the repo root or absolute')
  spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def load_config(spec: str) -> config_dict.ConfigDict:
  path, _, arg = config_path(spec).partition(':')
  module = _import(path, 'config')
  try:
    return module.get_config(arg) if arg else module.get_config()
  except ValueError as e:
    raise ConfigError(f'config {spec}: {e}') from e


def apply_overrides(c: config_dict.ConfigDict, overrides: dict) -> None:
  for field, value in overrides.items():
    *parents, leaf = field.split('.')
    node = c
    for key in parents:
      node = node.get(key) if isinstance(node, config_dict.ConfigDict) else None
    if not isinstance(node, config_dict.ConfigDict) or leaf not in node:
      raise ConfigError(f'overrides: unknown config field {field!r}; use a field of the config')
    if not isinstance(value, (bool, int, float, str)):
      raise ConfigError(f'overrides: {field}={value!r} is not a bool, int, float or str')
    try:
      setattr(node, leaf, value)
    except TypeError as e:
      raise ConfigError(f'overrides: {field}={value!r} has the wrong type ({e})') from e


def steps_for_budget(budget: float, flops_per_step: float) -> int:
  return round(budget / flops_per_step)


def steps_for_tokens_per_param(ratio: float, n_params: int, tokens_per_step: int) -> int:
  return round(ratio * n_params / tokens_per_step)


def retained_checkpoints(c: config_dict.ConfigDict) -> list[int]:
  """Steps whose checkpoints a completed run still has (the loop keeps the latest few)."""
  saved = sorted(set(range(c.checkpoint_every, c.steps + 1, c.checkpoint_every)) | {c.steps})
  return saved[-c.keep_checkpoints:]


def check_fork(trunk: config_dict.ConfigDict, trunk_name: str, step: int) -> None:
  kept = retained_checkpoints(trunk)
  if step not in kept:
    raise ConfigError(f'fork: trunk {trunk_name} keeps checkpoints at steps {kept}, not at {step}; '
                      'make its checkpoint_every divide the fork steps, raise keep_checkpoints')


def _planned_steps(spec: dict, described: dict, convention: str) -> int | None:
  """Steps set by a FLOP budget or a tokens-per-parameter ratio; None when the overrides decide."""
  per_step = described['tokens_per_step']
  if 'budget' in spec:
    steps = steps_for_budget(spec['budget'], described['flops_per_token'][convention] * per_step)
    if steps < 1:
      raise ConfigError(f'budget: {spec["budget"]:.3g} FLOPs is less than one training step of '
                        f'this model ({described["flops_per_token"][convention] * per_step:.3g} '
                        'FLOPs); raise the budget or lower batch_size or seq_len')
    return steps
  if 'tokens_per_param' in spec:
    steps = steps_for_tokens_per_param(spec['tokens_per_param'], described['n_params'], per_step)
    if steps < 1:
      raise ConfigError(f'tokens_per_param: {spec["tokens_per_param"]} gives less than one step of '
                        f'{per_step} tokens; raise it or lower batch_size or seq_len')
    return steps
  return None


def _check_keys(spec: dict) -> None:
  unknown = set(spec) - set(RUN_KEYS)
  if unknown:
    raise ConfigError(f'unknown keys {sorted(unknown)}; a run has {", ".join(RUN_KEYS)}')
  if 'config' not in spec:
    raise ConfigError("no 'config'; give e.g. 'configs/lm.py:size=nano'")
  setters = [k for k in ('budget', 'tokens_per_param') if k in spec]
  setters += ['overrides.steps'] if 'steps' in spec.get('overrides', {}) else []
  if len(setters) > 1:
    raise ConfigError(f'{" and ".join(setters)} both set the steps; keep one')
  if 'fork' in spec and setters != ['overrides.steps']:
    raise ConfigError('fork: a branch sets overrides.steps (fork step + cooldown steps) and no '
                      'budget or tokens_per_param')


def _fork(spec: dict, c: config_dict.ConfigDict, earlier: dict) -> str | None:
  """The trunk's name; sets init_step. The loop restores the trunk's state and data position."""
  if 'fork' not in spec:
    return None
  trunk, step = spec['fork'].get('trunk'), spec['fork'].get('step')
  if trunk not in earlier:
    raise ConfigError(f'fork: trunk {trunk!r} is not a run listed before this one; list it first')
  check_fork(earlier[trunk][0], trunk, step)
  if c.steps <= step:
    raise ConfigError(f'steps: {c.steps} must exceed the fork step {step} (overrides.steps = fork '
                      'step + cooldown steps)')
  c.init_step = step
  return trunk


def resolve_run(spec: dict, convention: str, earlier: dict) -> tuple[config_dict.ConfigDict, Run]:
  _check_keys(spec)
  c = load_config(spec['config'])
  overrides = dict(spec.get('overrides', {}))
  apply_overrides(c, overrides)
  if c.task not in TASKS:
    raise ConfigError(f'task: unknown {c.task!r}; use one of {", ".join(TASKS)}')
  trunk = _fork(spec, c, earlier)
  described = TASKS[c.task].describe(c)
  steps = _planned_steps(spec, described, convention)
  if steps is not None:
    c.steps = overrides['steps'] = steps
  if trunk:
    overrides['init_step'] = c.init_step
  TASKS[c.task].check_config(c)
  optim.check_config(c)
  per_token, per_step = described['flops_per_token'][convention], described['tokens_per_step']
  run = Run(name=spec['name'], config=spec['config'], overrides=overrides, trunk=trunk,
            n_params=described['n_params'],
            n_params_nonembedding=described['n_params_nonembedding'],
            tokens=c.steps * per_step, flops=c.steps * per_step * per_token,
            spent=(c.steps - (c.init_step if trunk else 0)) * per_step * per_token)
  return c, run


def _sweep_dict(path: str) -> dict:
  file, _, arg = path.partition(':')
  module = _import(os.path.join(ROOT, file), '--sweep')
  if not hasattr(module, 'get_sweep'):
    raise ConfigError(f'--sweep: {file} defines no get_sweep(); see configs/sweeps/isoflop.py')
  try:
    sweep = module.get_sweep(arg) if arg else module.get_sweep()
  except ValueError as e:
    raise ConfigError(f'--sweep: {path}: {e}') from e
  if not sweep.get('runs'):
    raise ConfigError(f'--sweep: {path} defines no runs; add run dicts to get_sweep()["runs"]')
  if sweep.get('convention', 'chinchilla') not in flops.CONVENTIONS:
    raise ConfigError(f'--sweep: convention {sweep["convention"]!r} is not one of '
                      f'{", ".join(flops.CONVENTIONS)}')
  return sweep


def load(path: str) -> Sweep:
  """Every run resolved and checked, so bad input stops the sweep before any run starts."""
  sweep = _sweep_dict(path)
  convention = sweep.get('convention', 'chinchilla')
  earlier = {}
  for spec in sweep['runs']:
    name = spec.get('name')
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in earlier:
      raise ConfigError(f'--sweep: run name {name!r} is missing, repeated or not made of letters, '
                        'digits and . _ - = +; give each run a unique directory name')
    try:
      earlier[name] = resolve_run(spec, convention, earlier)
    except ConfigError as e:
      raise ConfigError(f'run {name}: {e}') from e
  return Sweep(name=sweep.get('name', ''), file=path, convention=convention,
               runs=[run for _, run in earlier.values()])
