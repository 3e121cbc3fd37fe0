"""fit.json: what analysis.fit writes for a law fitted to a study, and the one reader of it (with
bootstrap.csv beside it) that analysis.plan and the quickstart share. Keys are added, never
renamed (docs/analysis.md lists them).
"""

import dataclasses
import json
import pathlib

import numpy as np
import pandas as pd

from analysis import allocation
from analysis import engine
from analysis import errors
from analysis import intervals
from analysis import laws
from analysis import study as study_lib

CHINCHILLA_PARAMS = laws.CHINCHILLA.params
AT_FLOPS_KEYS = ('N_opt', 'D_opt', 'tokens_per_param', 'a_local', 'b_local')


def residual_summary(table: pd.DataFrame, predicted) -> dict:
  """The fit's log residuals beside the measurements' own noise (median relative stderr)."""
  r = np.log(predicted) - np.log(table['loss'].to_numpy())
  out = {'rms_log': float(np.sqrt(np.mean(r**2))), 'median_abs_log': float(np.median(np.abs(r)))}
  se = table['loss_stderr'].to_numpy(float) if 'loss_stderr' in table else np.full(len(r), np.nan)
  ok = np.isfinite(se) & (se >= 0)
  out['eval_noise'] = None if not ok.any() else {
      'median_stderr': float(np.median(se[ok])),
      'median_rel_stderr': float(np.median(se[ok] / table['loss'].to_numpy()[ok])),
      'points_with_stderr': int(ok.sum())}
  return out


def resampled(study: study_lib.Study) -> str:
  """What the bootstrap resampled: points, or clusters of points that are not independent."""
  table = study.table
  clusters = table['cluster'].nunique() if 'cluster' in table else len(table)
  if clusters == len(table):
    return 'points'
  why = ('duplicated rows, and WSD branches of one trunk, together' if study.duplicates else
         'WSD branches of one trunk together')
  return f'{clusters} clusters of points ({why})'


def study_json(study: study_lib.Study) -> dict:
  """What every fit.json says about its table: units, what it mixes, duplicates, its range."""
  out = {'units': study.units}
  if study.mixed:
    out['mixed'] = study.mixed
  if study.duplicates:
    out['duplicates'] = study.duplicates
  return {**out, 'fitted_range': study.fitted_range()}


def law_json(study: study_lib.Study, fit: engine.LawFit) -> dict:
  """fit.json of a PowerSum law (Chinchilla's or a one-variable power law)."""
  law, table, params, samples = fit.law, study.table, fit.params, fit.samples
  result = {'law': law.name, 'n_points': len(table), 'params': params,
            'objective': fit.best.objective}
  if samples:
    result['stderr'], result['ci95'] = intervals.summarize(samples)
  ab = laws.exponents(params['alpha'], params['beta']) if law.name == 'chinchilla' else (None, None)
  result.update(a=ab[0], b=ab[1], converged=fit.best.converged)
  if law.name == 'chinchilla':
    result['compute'] = compute_of_study(study).to_json()
  predicted = law.predict(params, **{v: table[v].to_numpy() for v in law.variables})
  result['residuals'] = residual_summary(table, predicted)
  if fit.boot is not None:
    result['bootstrap'] = {**fit.boot.summary(), 'resampled': resampled(study)}
  return {**result, **study_json(study)}


def compute_of_study(study: study_lib.Study) -> allocation.Compute:
  t = study.table
  return (allocation.Compute.six_nd() if study.compute == '6nd' else
          allocation.Compute.from_table(t['N'], t['D'], t['C']))


def compute_of(result: dict) -> allocation.Compute | None:
  return allocation.Compute.from_json(result['compute']) if 'compute' in result else None


def at_flops_json(result: dict, samples: dict | None, C: float) -> dict:
  """fit.json's allocation at one budget, with 95% intervals over the bootstrap fits."""
  compute = compute_of(result)
  point = allocation.derived(result['params'], C, compute)
  out = {'C': C, **{k: float(point[k]) for k in AT_FLOPS_KEYS}}
  if samples:
    boot = allocation.derived(samples, C, compute)
    out['ci95'] = {k: intervals.ci95(boot[k]) for k in AT_FLOPS_KEYS}
  return out


@dataclasses.dataclass
class Fitted:
  """A Chinchilla-law fit read back: what a plan needs."""
  params: dict[str, float]
  samples: dict[str, np.ndarray] | None  # bootstrap.csv's rows, when it sits beside fit.json
  compute: allocation.Compute
  units: dict  # {} when fit.json predates them
  fitted_range: dict | None  # None when fit.json predates it

  @classmethod
  def of(cls, fit: dict, samples: dict | None) -> 'Fitted':
    return cls(fit['params'], samples, allocation.Compute.from_json(fit['compute']),
               fit.get('units') or {}, fit.get('fitted_range'))


def read_dict(path: str | pathlib.Path) -> dict:
  """fit.json of a converged Chinchilla-law fit with finite parameters, else one InputError."""
  path = pathlib.Path(path)
  try:
    fit = json.loads(path.read_text())
  except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
    raise errors.InputError(f'cannot read {path} ({e}): pass fit.json from analysis.fit') from e
  if not isinstance(fit, dict) or fit.get('law') != 'chinchilla':
    raise errors.InputError(f'{path} is not a Chinchilla-law fit: refit with --law=chinchilla')
  if fit.get('converged') is not True:
    raise errors.InputError(f'{path} records a fit that did not converge (converged: '
                            f'{fit.get("converged")}): fix the table and refit before planning')
  if not isinstance(fit.get('params'), dict) or set(fit['params']) != set(CHINCHILLA_PARAMS):
    raise errors.InputError(f'{path} lacks the parameters {", ".join(CHINCHILLA_PARAMS)}: refit '
                            'with python -m analysis.fit --law=chinchilla')
  if not all(isinstance(v, (int, float)) and np.isfinite(v) for v in fit['params'].values()):
    raise errors.InputError(f'{path} has non-finite parameters: refit')
  return fit


def _samples(boot: pathlib.Path) -> dict[str, np.ndarray] | None:
  if not boot.is_file():
    return None
  try:
    df = pd.read_csv(boot)
  except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
    raise errors.InputError(f'cannot read {boot} ({e}): refit with --bootstrap=R') from e
  missing = [k for k in CHINCHILLA_PARAMS if k not in df.columns]
  if missing or not len(df):
    raise errors.InputError(f'{boot} lacks ' + (f'the columns {", ".join(missing)}' if missing
                                                else 'rows') +
                            ': refit with --bootstrap=R, or remove the file')
  values = {k: pd.to_numeric(df[k], errors='coerce').to_numpy(np.float64)
            for k in CHINCHILLA_PARAMS}
  if not all(np.isfinite(v).all() for v in values.values()):
    raise errors.InputError(f'{boot} has empty or non-numeric values: refit with --bootstrap=R')
  return values


def read(path: str | pathlib.Path) -> Fitted:
  """A converged Chinchilla-law fit.json and the bootstrap.csv beside it; anything else, or a
  damaged file, is refused in one line."""
  path = pathlib.Path(path)
  fit, samples = read_dict(path), _samples(path.parent / 'bootstrap.csv')
  try:
    return Fitted.of(fit, samples)
  except (KeyError, TypeError, ValueError) as e:
    raise errors.InputError(f'{path} does not record its FLOP convention (compute): refit with '
                            'python -m analysis.fit') from e
