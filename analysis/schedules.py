"""The learning rate of every step, lr_T = (η_0, η_1, …, η_T), as the loss-curve laws read it
(analysis.curve_laws): η_t is the LR of the t-th optimizer update and η_0 = 0 (nothing trained).

Three sources, each with its convention named:
- a run's config.json (`from_config`): the schedule scaling.optim trains with, re-derived from
  the config's fields (analysis/ never imports scaling/): update s (0-based) has
  lr · min(1, (s+1)/warmup_steps) · decay, so η_t = that LR at s = t − 1. metrics.jsonl's `lr`
  at row `step` is the same η_step. tests/test_analysis_schedules.py compares the two.
- a `--schedule` spec (`from_spec`), the same shapes by name:
    constant:steps=N,peak=X,warmup=W
    cosine:steps=N,peak=X,final=Y,warmup=W
    wsd:steps=N,peak=X,final=Y,warmup=W,cooldown=0.2,shape=linear|sqrt|cosine|exp
    twostage:steps=N,peak=X,final=Y,warmup=W,switch=S   (peak until step S, then final)
    config:configs/lm.py:size=nano                       (what that config would train with)
    config:RUN/config.json                               (what that run trained with)
  `exp` decays geometrically from peak to final (Luo et al.'s WSD); final defaults to peak/10,
  scaling's min_lr_ratio default. analysis/ imports no config: a config file is evaluated by a
  child Python process that prints its fields as JSON, which are read like a run's config.json.
- rows of (step, lr) from a CSV (`from_rows`): linear between rows; before the first row a
  linear warmup from η_0 = 0, or (warmup=False) the first row's LR from step 1 on.
"""

import dataclasses
import json
import pathlib
import subprocess
import sys

import numpy as np

from analysis import errors

SHAPES = ('linear', 'sqrt', 'cosine', 'exp')
KINDS = ('constant', 'cosine', 'wsd', 'twostage', 'config')
CONFIG_FIELDS = ('lr', 'steps', 'schedule', 'warmup_steps', 'min_lr_ratio', 'cooldown_fraction',
                 'cooldown_shape')


@dataclasses.dataclass(frozen=True)
class Recipe:
  """A schedule's defining fields, in the names of scaling's config."""
  schedule: str  # constant | cosine | wsd | twostage
  lr: float  # the peak
  steps: int
  warmup_steps: int = 0
  min_lr_ratio: float = 0.1  # final LR / peak
  cooldown_fraction: float = 0.2  # wsd: last fraction of steps spent cooling down
  cooldown_shape: str = 'linear'
  switch: int = 0  # twostage: the step from which the LR is the final one

  def lr_T(self) -> np.ndarray:
    """η_0 … η_steps."""
    s = np.arange(self.steps, dtype=float)  # update s, 0-based
    warm = np.minimum(1.0, (s + 1) / max(self.warmup_steps, 1))
    floor = self.min_lr_ratio
    if self.schedule == 'constant':
      multiplier = np.ones_like(s)
    elif self.schedule == 'twostage':
      multiplier = np.where(s + 1 >= self.switch, floor, 1.0)
    else:
      start = (self.steps - round(self.cooldown_fraction * self.steps) if self.schedule == 'wsd'
               else self.warmup_steps)
      progress = np.clip((s - start) / max(self.steps - start, 1), 0.0, 1.0)
      shape = 'cosine' if self.schedule == 'cosine' else self.cooldown_shape
      multiplier = (floor**progress if shape == 'exp' else
                    floor + (1 - floor) * _cooldown(progress, shape))
    return np.concatenate([[0.0], self.lr * warm * multiplier])

  def describe(self) -> dict:
    return {k: v for k, v in dataclasses.asdict(self).items()
            if self.schedule == 'twostage' or k != 'switch'}


def _cooldown(progress: np.ndarray, shape: str) -> np.ndarray:
  """Multiplier falling from 1 at progress 0 to 0 at progress 1 (scaling.optim's shapes)."""
  if shape == 'sqrt':
    return 1.0 - np.sqrt(progress)
  if shape == 'cosine':
    return 0.5 * (1.0 + np.cos(np.pi * progress))
  return 1.0 - progress


def recipe_of_config(config: dict, where: str = 'config.json') -> Recipe:
  """The schedule of a run's resolved config (config.json), by scaling's field names."""
  missing = [k for k in CONFIG_FIELDS if k not in config]
  if missing:
    raise errors.InputError(f'{where} lacks {", ".join(missing)}: it is not a training config '
                            'that this version can read the schedule of')
  if config['schedule'] not in ('constant', 'cosine', 'wsd'):
    raise errors.InputError(f'{where}: unknown schedule {config["schedule"]!r}')
  return Recipe(schedule=config['schedule'], lr=float(config['lr']), steps=int(config['steps']),
                warmup_steps=int(config['warmup_steps']),
                min_lr_ratio=float(config['min_lr_ratio']),
                cooldown_fraction=float(config['cooldown_fraction']),
                cooldown_shape=config['cooldown_shape'])


def from_config(config: dict, where: str = 'config.json') -> np.ndarray:
  return recipe_of_config(config, where).lr_T()


# Run in a child process: the config file and ml_collections never enter analysis/'s imports.
_EVALUATE = ('import importlib.util, json, sys; path, arg = sys.argv[1:]; '
             'spec = importlib.util.spec_from_file_location("config", path); '
             'module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); '
             'print(json.dumps(module.get_config(arg).to_dict()))')


def _config_file(path: str, arg: str, where: str) -> dict:
  """The resolved fields of a config: a config.json as it is, a config file evaluated."""
  file = pathlib.Path(path)
  if not file.is_file():
    raise errors.InputError(f'{where}: no such file {path}')
  if file.suffix == '.json':
    try:
      return json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
      raise errors.InputError(f'{where}: {path} is not JSON ({e})') from None
  done = subprocess.run([sys.executable, '-c', _EVALUATE, str(file), arg], capture_output=True,
                        text=True, cwd=_repository(file))
  if done.returncode:
    last = (done.stderr.strip().splitlines() or ['no output'])[-1]
    raise errors.InputError(f'{where}: evaluating {path}:{arg} failed ({last})')
  return json.loads(done.stdout)


def _repository(file: pathlib.Path) -> pathlib.Path:
  """The folder a config file imports `configs` from: the one holding its `configs/` folder."""
  for parent in file.resolve().parents:
    if (parent / 'configs' / 'common.py').is_file():
      return parent
  return pathlib.Path.cwd()


def _parse_args(spec: str, args: str, defaults: dict) -> dict:
  """`key=value,...` typed like `defaults`; one InputError naming the key for anything else."""
  values = dict(defaults)
  for item in filter(None, (part.strip() for part in args.split(','))):
    key, _, text = item.partition('=')
    if key not in defaults or not text:
      raise errors.InputError(f'--schedule={spec!r}: {item!r} is not KEY=VALUE with KEY one of '
                              f'{", ".join(defaults)}')
    try:
      values[key] = type(defaults[key])(text)
    except ValueError:
      raise errors.InputError(f'--schedule={spec!r}: {key}={text!r} is not '
                              f'{type(defaults[key]).__name__}') from None
  return values


def recipe_of_spec(spec: str) -> Recipe:
  """A `--schedule` spec (see the module doc) as a Recipe; one InputError line when it does not
  parse."""
  kind, sep, args = spec.partition(':')
  if kind not in KINDS or not sep:
    raise errors.InputError(f'--schedule={spec!r}: not KIND:ARGS with KIND one of '
                            f'{", ".join(KINDS)} (e.g. cosine:steps=3000,peak=3e-3,warmup=20)')
  if kind == 'config':
    path, _, arg = args.partition(':')
    where = f'--schedule={spec}'
    return recipe_of_config(_config_file(path, arg, where), where)
  defaults = dict(steps=0, peak=0.0, final=-1.0, warmup=0)
  defaults |= {'wsd': dict(cooldown=0.2, shape='linear'), 'twostage': dict(switch=0)}.get(kind, {})
  v = _parse_args(spec, args, defaults)
  final = v['peak'] / 10 if v['final'] < 0 else v['final']
  problem = (
      'steps must be a positive integer' if v['steps'] < 1 else
      'peak must be a positive LR' if not 0 < v['peak'] < np.inf else
      f'final must be in [0, peak={v["peak"]:g}]' if not 0 <= final <= v['peak'] else
      f'warmup must be in [0, steps={v["steps"]}]' if not 0 <= v['warmup'] <= v['steps'] else
      'cooldown must be in [0, 1]' if not 0 <= v.get('cooldown', 0) <= 1 else
      f'shape must be one of {", ".join(SHAPES)}' if v.get('shape', 'linear') not in SHAPES else
      'shape=exp needs final > 0' if v.get('shape') == 'exp' and final == 0 else
      f'switch must be in [1, steps={v["steps"]}]' if kind == 'twostage' and
      not 1 <= v['switch'] <= v['steps'] else None)
  if problem:
    raise errors.InputError(f'--schedule={spec!r}: {problem}')
  return Recipe(schedule=kind, lr=v['peak'], steps=v['steps'], warmup_steps=v['warmup'],
                min_lr_ratio=final / v['peak'], cooldown_fraction=v.get('cooldown', 0.2),
                cooldown_shape=v.get('shape', 'linear'), switch=v.get('switch', 0))


def from_spec(spec: str) -> np.ndarray:
  return recipe_of_spec(spec).lr_T()


def from_rows(step_P: np.ndarray, lr_P: np.ndarray, warmup: bool = True) -> np.ndarray:
  """η_0 … η_T (T the last row's step) from the LR logged at some steps: linear in between; before
  the first row a linear warmup from η_0 = 0 (warmup) or the first row's LR from step 1 on.
  The rows are checked by the caller (analysis.curves): integer steps ≥ 1, increasing."""
  step_P, lr_P = np.asarray(step_P, dtype=float), np.asarray(lr_P, dtype=float)
  t = np.arange(int(step_P[-1]) + 1, dtype=float)
  if warmup:
    return np.interp(t, np.concatenate([[0.0], step_P]), np.concatenate([[0.0], lr_P]))
  lr_T = np.interp(t, step_P, lr_P)  # constant at the first row's LR before it
  lr_T[0] = 0.0
  return lr_T
