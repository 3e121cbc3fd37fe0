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
    epochs            optional: steps = floor(epochs * the corpus's tokens per epoch / tokens per
                      step) (LM: run.json's corpus.tokens_per_epoch); sets max_epochs to it too
    fork              optional: {'trunk': NAME, 'step': S}, a WSD cooldown branch that starts from
                      run NAME's checkpoint at step S (NAME must come earlier in `runs`)

Steps come from the task's own `describe` (the numbers run.json will record), so the FLOP
arithmetic lives here and not in the configs. A branch counts tokens and FLOPs from step 0, its
trunk's included; `spent` is what the run itself computes.
"""

import dataclasses
import inspect
import os
import re

from ml_collections import config_dict

from scaling import checks, configfile, flops
from scaling.errors import ConfigError
from scaling.tasks import TASKS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_KEYS = ('name', 'config', 'overrides', 'budget', 'tokens_per_param', 'epochs', 'fork')
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
  epochs: float | None = None  # tokens / the corpus's tokens per epoch; None where unknown

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
  """The config file (found against the repo root, see scaling.configfile) with its argument."""
  path, sep, arg = spec.partition(':')
  return configfile.resolve(path, 'config', base=ROOT) + sep + arg


def _call(module, name: str, arg: str, what: str):
  """module.name(arg), or module.name() without one; its ValueError becomes one line."""
  fn = getattr(module, name, None)
  if fn is None:
    raise ConfigError(f'{what}: {module.__file__} defines no {name}(); see configs/sweeps/isoflop.py')
  if arg and not inspect.signature(fn).parameters:
    raise ConfigError(f'{what}: {module.__file__} takes no argument, but got {arg!r}; drop the '
                      f'":{arg}"')
  try:
    return fn(arg) if arg else fn()
  except (ValueError, TypeError, KeyError) as e:
    raise ConfigError(f'{what}: {e}') from e


def load_config(spec: str) -> config_dict.ConfigDict:
  path, _, arg = config_path(spec).partition(':')
  return _call(configfile.import_file(path, 'config'), 'get_config', arg, f'config {spec}')


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
  if 'epochs' in spec:
    per_epoch = (described.get('corpus') or {}).get('tokens_per_epoch')
    if not per_epoch:
      raise ConfigError('epochs: this dataset has no known size in tokens (tfds:?); set the steps '
                        'with budget, tokens_per_param or overrides.steps')
    steps = int(spec['epochs'] * per_epoch // per_step)  # never past the epochs asked for
    if steps < 1:
      raise ConfigError(f'epochs: {spec["epochs"]} of {per_epoch} tokens is less than one step of '
                        f'{per_step} tokens; raise it or lower batch_size or seq_len')
    return steps
  return None


def _check_keys(spec: dict) -> None:
  unknown = set(spec) - set(RUN_KEYS)
  if unknown:
    raise ConfigError(f'unknown keys {sorted(unknown)}; a run has {", ".join(RUN_KEYS)}')
  if 'config' not in spec:
    raise ConfigError("no 'config'; give e.g. 'configs/lm.py:size=nano'")
  setters = [k for k in ('budget', 'tokens_per_param', 'epochs') if k in spec]
  setters += ['overrides.steps'] if 'steps' in spec.get('overrides', {}) else []
  if len(setters) > 1:
    raise ConfigError(f'{" and ".join(setters)} both set the steps; keep one')
  if 'fork' in spec and setters != ['overrides.steps']:
    raise ConfigError('fork: a branch sets overrides.steps (fork step + cooldown steps) and no '
                      'budget, tokens_per_param or epochs')


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
  checks.check_fields(c, schedule=False)  # before any arithmetic: a batch_size of 0 stops here
  trunk = _fork(spec, c, earlier)
  described = TASKS[c.task].describe(c)
  steps = _planned_steps(spec, described, convention)
  if steps is not None:
    c.steps = overrides['steps'] = steps
  if 'epochs' in spec:  # repeating data is the point of such a run: allow what it plans
    c.max_epochs = overrides['max_epochs'] = float(spec['epochs'])
  if 'budget' in spec:  # recorded in config.json and run.json: Approach 2 groups by it
    c.budget = overrides['budget'] = float(spec['budget'])
  if trunk:
    overrides['init_step'] = c.init_step
  checks.check_schedule(c)  # once the steps are planned: they bound warmup_steps and epochs
  per_token, per_step = described['flops_per_token'][convention], described['tokens_per_step']
  per_epoch = (described.get('corpus') or {}).get('tokens_per_epoch')
  run = Run(name=spec['name'], config=spec['config'], overrides=overrides, trunk=trunk,
            n_params=described['n_params'],
            n_params_nonembedding=described['n_params_nonembedding'],
            tokens=c.steps * per_step, flops=c.steps * per_step * per_token,
            spent=(c.steps - (c.init_step if trunk else 0)) * per_step * per_token,
            epochs=c.steps * per_step / per_epoch if per_epoch else None)
  return c, run


def _sweep_dict(path: str) -> dict:
  file, _, arg = path.partition(':')
  sweep = _call(configfile.import_file(file, '--sweep', base=ROOT), 'get_sweep', arg,
                f'--sweep: {path}')
  if not isinstance(sweep, dict) or not sweep.get('runs'):
    raise ConfigError(f'--sweep: {path} defines no runs; add run dicts to get_sweep()["runs"]')
  if sweep.get('convention', 'chinchilla') not in flops.CONVENTIONS:
    raise ConfigError(f'--sweep: convention {sweep["convention"]!r} is not one of '
                      f'{", ".join(flops.CONVENTIONS)}')
  return sweep


def load(path: str, devices: int | None = None, processes: int = 1) -> Sweep:
  """Every run resolved and checked, so bad input stops the sweep before any run starts; given
  the `devices` (over `processes`) each run will get, also the checks the run makes at launch."""
  sweep = _sweep_dict(path)
  convention = sweep.get('convention', 'chinchilla')
  earlier = {}
  for spec in sweep['runs']:
    name = spec.get('name') if isinstance(spec, dict) else None
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in earlier:
      raise ConfigError(f'--sweep: run name {name!r} is missing, repeated or not made of letters, '
                        'digits and . _ - = +; give each run a unique directory name')
    try:
      earlier[name] = resolve_run(spec, convention, earlier)
      if devices is not None:
        checks.check_launch(earlier[name][0], devices, processes)
    except ConfigError as e:
      raise ConfigError(f'run {name}: {e}') from e
  return Sweep(name=sweep.get('name', ''), file=path, convention=convention,
               runs=[run for _, run in earlier.values()])
