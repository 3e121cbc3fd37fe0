"""Learning-rate and batch-size laws fitted to a grid of runs (issue 26): the runs' table with
what each column counts, its (N, D) cells and their optima (analysis.hparam_optima), and the laws
log η* = log k + Σ a_v log v and log B* = log k' + Σ b_v log v (analysis.hparam_laws) with
intervals from resamples of the runs within cells.

  grid = hparams.Grid.from_runs('runs/lr_batch/runs')    # or Grid.from_csv(path, columns, unit)
  result = hparams.fit(grid, hparams.Options(bootstrap=200))
  result.lr.params, result.batch.params, result.cells   # {'coefficient', 'N', 'D'}, ..., a table

With runs, each run's learning rate is config.json's `lr` (the peak of its schedule) and its batch
is counted in tokens per step (run.json's final tokens / steps; `batch_unit='tokens'`, the unit of
DeepSeek and Step Law) or in sequences (config.json's `batch_size`). N, D, C and the loss are the
Study's (all parameters by default, C_chinchilla, the final eval loss). A CSV names its columns
with `N=..,D=..,C=..,lr=..,batch=..,loss=..` (C = 6ND without a C column) and must say what its
batch counts: a column named with `token` or `seq`, or `batch_unit`.
"""

import dataclasses
import pathlib

import numpy as np
import pandas as pd

from analysis import engine
from analysis import errors
from analysis import hparam_laws
from analysis import hparam_optima as optima
from analysis import points
from analysis import runs as runs_lib
from analysis import study as study_lib

BATCH_UNITS = ('tokens', 'sequences')
VARIABLES = ('N', 'D', 'C')
MIN_RUNS = 3  # per cell
HPARAM_COLUMNS = ('lr', 'batch')


@dataclasses.dataclass(frozen=True)
class Options:
  optimum: str = 'band'  # or 'interp'
  band: float = 0.0025  # relative, for 'band'
  lr_vars: tuple[str, ...] = ('N', 'D')
  batch_vars: tuple[str, ...] = ('D',)
  allow_edge: bool = False
  bootstrap: int = 0
  seed: int = 0


@dataclasses.dataclass
class Grid:
  table: pd.DataFrame  # one row per run: N, D, C, lr, batch, loss (and run, when read from runs)
  units: dict[str, str]
  batch_unit: str  # 'tokens' or 'sequences'
  tokens_per_sequence: float | None = None  # known for runs; converts published batch laws
  runs: runs_lib.Runs | None = None  # when read from runs: their curves and configs

  @classmethod
  def from_runs(cls, source, n: str = 'total', loss: str | None = None,
                batch_unit: str = 'tokens') -> 'Grid':
    study = study_lib.Study.from_runs(source, {'loss': loss} if loss else None, n=n)
    runs = study.runs.table.set_index('run')
    configs = [study.runs.configs[name] for name in study.table['run']]
    per_step = (runs['D'] / runs['steps']).loc[study.table['run']].to_numpy(float)
    sequences = np.array([c.get('batch_size', np.nan) for c in configs], float)
    table = study.table.assign(lr=[c.get('lr', np.nan) for c in configs],
                               batch=per_step if batch_unit == 'tokens' else sequences)
    what = ('tokens per step (run.json: final tokens / steps)' if batch_unit == 'tokens' else
            'sequences per step (config.json batch_size)')
    units = {**study.units, 'lr': 'peak learning rate (config.json lr)', 'batch': what}
    per_sequence = per_step / sequences
    return cls(table, units, batch_unit,
               float(np.median(per_sequence)) if np.isfinite(per_sequence).any() else None,
               study.runs)

  @classmethod
  def from_csv(cls, path: str | pathlib.Path, columns: str = '',
               batch_unit: str | None = None) -> 'Grid':
    """`columns`: 'N=<col>,D=<col>,C=<col>,lr=<col>,batch=<col>,loss=<col>'."""
    ours, rest = _split_columns(columns)
    names = {k: ours.get(k, k) for k in HPARAM_COLUMNS}
    study = study_lib.Study.from_csv(path, points.parse_columns(rest))
    raw = points.read_csv(path)
    missing = [f'{k} (column {c!r})' for k, c in names.items() if c not in raw.columns]
    if missing:
      raise errors.InputError(f'{path} has no {" or ".join(missing)}: map them with --columns '
                              f'lr=<column>,batch=<column> (columns are: {", ".join(raw.columns)})')
    unit = batch_unit or batch_unit_of(names['batch'])
    table = study.table.assign(**{k: pd.to_numeric(raw[c], errors='coerce').to_numpy(float)
                                  for k, c in names.items()})
    units = {**study.units, 'lr': f'column {names["lr"]}', 'batch': f'{unit} (column '
             f'{names["batch"]})'}
    return cls(table, units, unit)


def _split_columns(spec: str) -> tuple[dict[str, str], str]:
  """--columns' lr= and batch= entries, and the rest (analysis.points' keys) as a spec."""
  ours, rest = {}, []
  for item in filter(None, (s.strip() for s in spec.split(','))):
    key, _, col = item.partition('=')
    if key.strip() in HPARAM_COLUMNS:
      ours[key.strip()] = col.strip()
    else:
      rest.append(item)
  return ours, ','.join(rest)


def batch_unit_of(column: str) -> str:
  """What a CSV's batch column counts, from its name; one InputError when it does not say."""
  low = column.lower()
  found = [u for u, key in (('tokens', 'token'), ('sequences', 'seq')) if key in low]
  if len(found) != 1:
    raise errors.InputError(f'the batch column {column!r} does not say whether it counts tokens or '
                            'sequences: pass --batch-unit=tokens or --batch-unit=sequences')
  return found[0]


def check_grid(table: pd.DataFrame) -> None:
  """One InputError for a learning rate or batch that is not a finite number > 0, or a cell with
  fewer than MIN_RUNS runs or a single learning rate."""
  for key in HPARAM_COLUMNS:
    bad = ~(np.isfinite(table[key].to_numpy(float)) & (table[key].to_numpy(float) > 0))
    if bad.any():
      r = table[bad].iloc[0]
      raise errors.InputError(f'{key}: {r[key]} at N={r.N:.4g}, D={r.D:.4g} ({int(bad.sum())} '
                              'such rows): every learning rate and batch must be a finite number '
                              '> 0; fix or drop the rows')
  for (N, D), g in table.groupby(optima.CELL):
    if len(g) < MIN_RUNS or g['lr'].nunique() < 2:
      raise errors.InputError(f'the cell N={N:.4g}, D={D:.4g} has {len(g)} runs at '
                              f'{g["lr"].nunique()} learning rates: a cell needs {MIN_RUNS} runs '
                              'or more at 2 learning rates or more; add runs or drop the cell')


def cell_optima(table: pd.DataFrame, options: Options) -> pd.DataFrame:
  """One row per (N, D) cell: its C, optimum (lr, batch, loss), edge, runs and near-optimal runs,
  and whether the fit uses it (`fitted`: not on the edge, or --allow-edge)."""
  rows = []
  for cell, g in table.groupby('cell'):
    found = optima.optimum(options.optimum, g['lr'], g['batch'], g['loss'], options.band)
    rows.append({'cell': cell, 'N': g['N'].iloc[0], 'D': g['D'].iloc[0], 'C': g['C'].mean(),
                 'lr': found.lr, 'batch': found.batch, 'loss': found.loss, 'edge': found.edge,
                 'runs': len(g), 'near_optimal': None if found.near_R is None else
                 int(found.near_R.sum())})
  cells = pd.DataFrame(rows)
  cells['fitted'] = cells['edge'].isna() | options.allow_edge
  return cells


def _check_identified(cells: pd.DataFrame, variables: tuple[str, ...], what: str) -> None:
  used = cells[cells['fitted']]
  if not len(used):
    edges = '; '.join(f'N={r.N:.4g}, D={r.D:.4g}: {r.edge}' for r in cells.itertuples())
    raise errors.InputError(f'every cell\'s optimum is on the edge of its grid ({edges}): extend '
                            'the grids past the optima, or pass --allow-edge')
  short = [v for v in variables if used[v].nunique() < 2]
  if short or len(used) < 1 + len(variables):
    raise errors.InputError(f'the {what} law in {", ".join(variables)} needs {1 + len(variables)} '
                            f'cells or more off the edge, with 2 or more values of each variable; '
                            f'the fit has {len(used)} cells' + (f', one value of {", ".join(short)}'
                                                               if short else '') +
                            ': add cells, drop a variable (--lr-vars, --batch-vars) or pass '
                            '--allow-edge')


@dataclasses.dataclass
class HparamsFit:
  grid: Grid
  options: Options
  cells: pd.DataFrame  # cell_optima
  lr: engine.LawFit
  batch: engine.LawFit


def fit(grid: Grid, options: Options) -> HparamsFit:
  table = grid.table.assign(cell=grid.table.groupby(optima.CELL).ngroup())
  check_grid(table)
  cells = cell_optima(table, options)
  _check_identified(cells, options.lr_vars, 'learning-rate')
  _check_identified(cells, options.batch_vars, 'batch-size')
  runs = table[table['cell'].isin(cells.loc[cells['fitted'], 'cell'])].reset_index(drop=True)
  if options.optimum == 'band':
    fitted, weight_P = runs, np.zeros(len(runs))
    for rows in runs.groupby('cell').indices.values():
      g = runs.iloc[rows]
      weight_P[rows] = optima.band_optimum(g['lr'], g['batch'], g['loss'], options.band).near_R
  else:
    fitted, weight_P = cells[cells['fitted']].reset_index(drop=True), None
  res = None if not options.bootstrap else optima.resample(
      runs, fitted['cell'].to_numpy(), options.optimum, options.band, options.bootstrap,
      options.seed)
  laws = {}
  for key, variables in (('lr', options.lr_vars), ('batch', options.batch_vars)):
    law = hparam_laws.PowerProduct.on(fitted[weight_P != 0] if weight_P is not None else fitted,
                                      variables)
    laws[key] = hparam_laws.fit(law, fitted, key, weight_P,
                                None if res is None else getattr(res, f'{key}_RxP'),
                                None if res is None else res.weight_RxP)
  return HparamsFit(grid, options, cells, laws['lr'], laws['batch'])
