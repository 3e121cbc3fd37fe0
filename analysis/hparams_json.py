"""fit.json of a learning-rate and batch-size fit (`"law": "hparams"`), its printed summary and
bootstrap.csv, and the one reader of them that analysis.plan uses. Keys are added, never renamed.

fit.json's `hparams`: `method` (band or interp), `band`, `batch_unit`, `units`, `objective`, and
for `lr` and `batch`: `variables`, `coefficient`, `exponents` ({variable: value}), `ci95`
({`coefficient`: [lo, hi], `exponents`: {variable: [lo, hi]}}, nulls without a bootstrap),
`converged`; then `cells` (each with its optimum and edge flag, and whether the fit used it),
`fitted_range` and `bootstrap`.
"""

import dataclasses
import json
import pathlib

import numpy as np
import pandas as pd

from analysis import errors
from analysis import hparam_laws
from analysis import hparams
from analysis import intervals

def _law_json(fit, variables: tuple[str, ...]) -> dict:
  samples = fit.samples or {}
  ci = {k: intervals.ci95(samples[k]) if samples else None for k in fit.law.params}
  return {'variables': list(variables), 'coefficient': fit.params['coefficient'],
          'exponents': {v: fit.params[v] for v in variables},
          'ci95': {'coefficient': ci['coefficient'], 'exponents': {v: ci[v] for v in variables}},
          'converged': fit.best.converged}


def to_json(result: hparams.HparamsFit) -> dict:
  o, cells = result.options, result.cells
  fitted = cells[cells['fitted']]
  out = {
      'method': o.optimum, 'band': o.band if o.optimum == 'band' else None,
      'batch_unit': result.grid.batch_unit, 'units': result.grid.units,
      'objective': hparam_laws.OBJECTIVE,
      'lr': _law_json(result.lr, o.lr_vars), 'batch': _law_json(result.batch, o.batch_vars),
      'allow_edge': o.allow_edge,
      'cells': json.loads(cells.drop(columns='cell').to_json(orient='records')),
      'fitted_range': {v: [float(fitted[v].min()), float(fitted[v].max())]
                       for v in hparams.VARIABLES},
  }
  if result.lr.boot is not None:
    out['bootstrap'] = {'resamples': o.bootstrap, 'seed': o.seed,
                        'converged': {k: int(getattr(result, k).boot.converged_R.sum())
                                      for k in ('lr', 'batch')},
                        'resampled': 'runs within each cell (multinomial counts); the optimum '
                                     'and the band are redone on every resample'}
  return {'law': 'hparams', 'converged': result.lr.best.converged and result.batch.best.converged,
          'n_runs': len(result.grid.table), 'hparams': out}


def samples_table(result: hparams.HparamsFit) -> pd.DataFrame | None:
  """bootstrap.csv: one row per resample, `lr_<param>` and `batch_<param>` (NaN where it failed)."""
  if result.lr.boot is None:
    return None
  cols = {}
  for key in ('lr', 'batch'):
    fit = getattr(result, key)
    named = fit.law.named(fit.boot.x_RxQ)
    for k, v in named.items():
      cols[f'{key}_{k}'] = np.where(fit.boot.converged_R, v, np.nan)
  return pd.DataFrame(cols)


def _law_line(name: str, law: dict, unit: str) -> str:
  terms = ' · '.join(f'{v}^{law["exponents"][v]:.3f}' for v in law['variables'])
  spans = [f'{v} exponent ' + ('no interval' if ci is None else f'[{ci[0]:.3f}, {ci[1]:.3f}]')
           for v, ci in law['ci95']['exponents'].items()]
  return f'{name} = {law["coefficient"]:.4g} · {terms}  ({unit}; 95% CI: {", ".join(spans)})'


def lines(result_json: dict) -> list[str]:
  h = result_json['hparams']
  out = [f'optimum by {h["method"]}' + (f' (band {h["band"]:g})' if h['band'] is not None else '')
         + f'; batch in {h["batch_unit"]}; {h["objective"]}']
  out.append(f'{"N":>12}{"D":>12}{"lr*":>11}{"batch*":>10}{"loss":>9}  edge / fitted')
  for c in h['cells']:
    out.append(f'{c["N"]:>12.4g}{c["D"]:>12.4g}{c["lr"]:>11.4g}{c["batch"]:>10.4g}'
               f'{c["loss"]:>9.4f}  {c["edge"] or "-"} / {"yes" if c["fitted"] else "no"}')
  out.append(_law_line('lr*', h['lr'], 'peak learning rate'))
  out.append(_law_line('batch*', h['batch'], h['batch_unit']))
  return out


@dataclasses.dataclass
class Fitted:
  """An hparams fit read back: each law's parameters and resampled parameters (None: no
  bootstrap.csv beside fit.json), the batch unit and the fitted range."""
  laws: dict[str, dict]  # 'lr', 'batch' -> {'coefficient': k, <variable>: exponent}
  samples: dict[str, dict[str, np.ndarray]] | None
  batch_unit: str
  fitted_range: dict[str, list[float]]
  units: dict[str, str]


def read(path: str | pathlib.Path) -> Fitted:
  """fit.json of a converged --law=hparams fit, and the bootstrap.csv beside it; anything else is
  refused in one line."""
  path = pathlib.Path(path)
  try:
    fit = json.loads(path.read_text())
    h = fit['hparams'] if fit.get('law') == 'hparams' else None
  except (OSError, json.JSONDecodeError, UnicodeDecodeError, AttributeError, KeyError) as e:
    raise errors.InputError(f'cannot read {path} as an hparams fit ({e}): pass the fit.json of '
                            'python -m analysis.fit --law=hparams') from e
  if h is None or fit.get('converged') is not True:
    raise errors.InputError(f'{path} is not a converged --law=hparams fit: refit with '
                            'python -m analysis.fit --law=hparams')
  laws = {k: {'coefficient': h[k]['coefficient'], **h[k]['exponents']} for k in ('lr', 'batch')}
  boot = path.parent / 'bootstrap.csv'
  samples = None
  if boot.is_file():
    df = pd.read_csv(boot)
    try:
      samples = {k: {p: df[f'{k}_{p}'].to_numpy(float) for p in laws[k]} for k in laws}
    except KeyError as e:
      raise errors.InputError(f'{boot} lacks the column {e}: refit with --bootstrap=R') from e
  return Fitted(laws, samples, h['batch_unit'], h['fitted_range'], h['units'])
