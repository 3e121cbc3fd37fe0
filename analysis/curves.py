"""Loss curves as the loss-curve laws read them: the LR of every step and the observed losses,
each observation being the law's value at one step or its mean over a logging window.

A curve comes from a CSV `step,lr,loss` (the format of Luo et al.'s public data: the loss at
`step`, the LR logged there; analysis.schedules fills the steps between rows) or from a run
directory (the LR from its config.json, the losses from metrics.jsonl: `eval_loss` rows are the
model after `step` updates; a `train_loss` row is the mean of the per-step losses since the row
before, each taken before its update, so the law's mean over steps prev_step … step − 1).

A window's mean is taken by a three-node rule exact for quadratics (first, middle and last step of
the window): the law is smooth over a logging window, and every step of it would cost the fit
a window's length in evaluations.
"""

import dataclasses
import pathlib

import numpy as np
import pandas as pd
from scipy import sparse

from analysis import curve_laws
from analysis import errors
from analysis import points
from analysis import runs as runs_lib
from analysis import schedules

MIN_POINTS = 3  # rows a curve needs in its fitted range to show a shape


@dataclasses.dataclass(frozen=True)
class Curve:
  name: str
  lr_T: np.ndarray  # η_0 … η_T
  step_P: np.ndarray  # int: the step of each observation (its last step + 1 for a window)
  loss_P: np.ndarray
  first_P: np.ndarray  # int: the first step each observation averages over
  last_P: np.ndarray  # int: the last step (first = last: the loss at that step)
  stderr_P: np.ndarray | None = None  # the measurement's standard error (runs' eval rows)
  source: dict = dataclasses.field(default_factory=dict)  # what it is, for curve_fit.json

  @property
  def steps(self) -> int:
    return len(self.lr_T) - 1

  def design(self) -> tuple[np.ndarray, sparse.csr_matrix]:
    """The steps the law is evaluated at (t_N, sorted) and the P×N matrix that averages them
    into the observations."""
    rows, nodes, weights = [], [], []
    for p, (a, b) in enumerate(zip(self.first_P, self.last_P)):
      t, w = _window_rule(int(a), int(b))
      rows += [p] * len(t)
      nodes += t
      weights += w
    t_N, inverse = np.unique(nodes, return_inverse=True)
    return t_N, sparse.csr_matrix((weights, (rows, inverse)), shape=(len(self.step_P), len(t_N)))

  def since(self, min_step: int) -> 'Curve':
    """The observations whose first averaged step is at least min_step."""
    keep = self.first_P >= min_step
    return dataclasses.replace(
        self, step_P=self.step_P[keep], loss_P=self.loss_P[keep], first_P=self.first_P[keep],
        last_P=self.last_P[keep],
        stderr_P=None if self.stderr_P is None else self.stderr_P[keep])


def _window_rule(a: int, b: int) -> tuple[list[int], list[float]]:
  """Nodes and weights whose sum is the mean over the integer steps a..b, exact for quadratics."""
  if b - a <= 1:
    return sorted({a, b}), [1.0] if a == b else [0.5, 0.5]
  nodes = np.array([a, (a + b) // 2, b], dtype=float)
  span = np.arange(a, b + 1, dtype=float)
  moments = [1.0, span.mean(), (span**2).mean()]
  weights = np.linalg.solve(np.vander(nodes, 3, increasing=True).T, moments)
  return [a, (a + b) // 2, b], list(weights)


def check_rows(name: str, step_P: np.ndarray, lr_P: np.ndarray | None,
               loss_P: np.ndarray) -> None:
  """One InputError line for rows no law can read."""
  if len(step_P) < MIN_POINTS:
    raise errors.InputError(f'{name}: {len(step_P)} rows; a curve needs at least {MIN_POINTS} '
                            'to fit or to be scored')
  if not np.isfinite(step_P).all() or (step_P != np.round(step_P)).any() or step_P.min() < 1:
    raise errors.InputError(f'{name}: steps must be whole numbers of at least 1 (updates done)')
  if (np.diff(step_P) <= 0).any():
    i = int(np.flatnonzero(np.diff(step_P) <= 0)[0])
    raise errors.InputError(f'{name}: steps must increase; step {step_P[i]:g} is followed by '
                            f'{step_P[i + 1]:g}')
  for what, values in (('lr', lr_P), ('loss', loss_P)):
    if values is None:
      continue
    bad = ~np.isfinite(values) | (values < 0) | ((values == 0) if what == 'loss' else False)
    if bad.any():
      i = int(np.flatnonzero(bad)[0])
      rule = 'an LR must be finite and >= 0' if what == 'lr' else 'a loss must be finite and > 0'
      raise errors.InputError(f'{name}: {what} {float(values[i]):g} at step {step_P[i]:g}; {rule}')


def from_csv(path: str | pathlib.Path, warmup: bool = True) -> Curve:
  """A curve from a CSV with columns step, lr, loss (the loss at each step)."""
  table = points.read_csv(path)
  missing = [c for c in ('step', 'lr', 'loss') if c not in table.columns]
  if missing:
    raise errors.InputError(f'{path}: no column {", ".join(missing)}; a curve CSV has columns '
                            'step,lr,loss')
  step_P, lr_P, loss_P = (pd.to_numeric(table[c], errors='coerce').to_numpy(float)
                          for c in ('step', 'lr', 'loss'))  # text: NaN, refused below
  check_rows(str(path), step_P, lr_P, loss_P)
  step_P = step_P.astype(np.int64)
  return Curve(name=pathlib.Path(path).stem, lr_T=schedules.from_rows(step_P, lr_P, warmup),
               step_P=step_P, loss_P=loss_P, first_P=step_P, last_P=step_P,
               source={'kind': 'csv', 'path': str(path), 'loss': 'column loss, at each step',
                       'lr': ('the rows\' lr, linear in between; before the first row a linear '
                              'warmup from 0 at step 0' if warmup else
                              'the rows\' lr, linear in between; the first row\'s lr before it')})


def read(path: str, loss: str = 'eval_loss', warmup: bool = True,
         min_step: int | None = None) -> Curve:
  """A curve from a CSV file or a run directory; observations before min_step dropped (default:
  a run's warmup, up to the first step at its peak LR; a CSV's first row)."""
  p = pathlib.Path(path)
  if p.is_dir():
    curve = from_run(p, loss)
    first = curve.source['warmup_end'] if min_step is None else min_step
  elif p.is_file():
    curve, first = from_csv(p, warmup), 1 if min_step is None else min_step
  else:
    raise errors.InputError(f'{path}: no such CSV file or run directory')
  kept = curve.since(first)
  if len(kept.step_P) < MIN_POINTS:
    raise errors.InputError(f'{path}: {len(kept.step_P)} observations from step {first} on; a '
                            f'curve needs at least {MIN_POINTS} to fit or to be scored')
  return kept


def check_same_data(curves: list[Curve]) -> None:
  """One law should not fit curves of different tasks, datasets or tokenizers (runs record them;
  a CSV does not, and is taken as the user says)."""
  table = pd.DataFrame([{k: c.source.get(k) for k in runs_lib.MIX_COLUMNS} for c in curves
                        if c.source.get('kind') == 'run'])
  mixed = runs_lib.mixes(table) if len(table) else []
  if mixed:
    raise errors.InputError(f'the curves mix {"; ".join(mixed)}: one law should not fit them')


def _lr_of_run(path: pathlib.Path, config: dict) -> tuple[np.ndarray, str]:
  """η_0 … η_T of a run from its config.json; a branch's steps up to its fork from its trunk's."""
  lr_T = schedules.from_config(config, f'{path}/config.json')
  if not config.get('init_from'):
    return lr_T, 'config.json'
  trunk_dir, fork = pathlib.Path(config['init_from']), int(config.get('init_step', 0))
  if not trunk_dir.is_dir():
    raise errors.InputError(f'{path} was forked from {trunk_dir} at step {fork}, which is not '
                            'there: its LR before the fork is its trunk\'s config.json')
  trunk = runs_lib.load(trunk_dir)
  trunk_lr = schedules.from_config(next(iter(trunk.configs.values())), f'{trunk_dir}/config.json')
  lr_T[:fork + 1] = trunk_lr[:fork + 1]
  return lr_T, f'config.json after step {fork}; before it, its trunk {trunk_dir}\'s config.json'


def from_run(path: pathlib.Path, loss: str = 'eval_loss') -> Curve:
  """A curve from one run directory: the LR from its config.json, the losses from its metrics
  (a branch's rows up to its fork are its trunk's model, and are left to the trunk)."""
  loaded = runs_lib.load(path)
  if len(loaded.table) != 1:
    raise errors.InputError(f'{path} holds {len(loaded.table)} runs; pass each run directory')
  run = loaded.table.iloc[0]
  config = loaded.configs[run['run']]
  lr_T, lr_source = _lr_of_run(path, config)
  start = int(config.get('init_step', 0)) if config.get('init_from') else 0
  rows = loaded.curves[loaded.curves[loss].notna()]
  step_P = rows['step'].to_numpy(np.int64)
  after = step_P > start
  if loss == 'train_loss':  # the mean over the updates since the row before, each before its update
    first_P = np.concatenate([[start], step_P[:-1]])
    last_P = step_P - 1
  else:
    first_P = last_P = step_P
  stderr = rows['eval_loss_stderr'].to_numpy(float) if loss == 'eval_loss' else None
  check_rows(str(path), step_P[after].astype(float), None, rows[loss].to_numpy(float)[after])
  return Curve(name=pathlib.Path(path).name, lr_T=lr_T, step_P=step_P[after],
               loss_P=rows[loss].to_numpy(float)[after], first_P=first_P[after],
               last_P=last_P[after], stderr_P=None if stderr is None else stderr[after],
               source={'kind': 'run', 'path': str(path), 'loss': f'metrics.jsonl {loss}',
                       'lr': lr_source, 'warmup_end': curve_laws.warmup_end(lr_T),
                       **{k: _plain(run.get(k)) for k in runs_lib.MIX_COLUMNS}})


def _plain(value):
  """A table cell as a JSON value: None for a missing one, Python scalars for numpy's."""
  if value is None or (np.ndim(value) == 0 and pd.isna(value)):
    return None
  return value.item() if isinstance(value, np.generic) else value
