"""Chinchilla's three approaches side by side, in the layout of their Table 2 (a and b, with 95%
intervals, one row per approach), and where they disagree beyond those intervals.

Approach 1 (envelope of training curves) applies when the curves exist (`--runs`); Approach 2
(IsoFLOP profiles, analysis/isoflop.py) when budgets have enough sizes; Approach 3 (the fitted
L(N, D)) always. An approach that does not apply says why in one line.
"""

import dataclasses
import itertools
import json
import pathlib
import warnings

import numpy as np
import pandas as pd

from analysis import approaches
from analysis import errors
from analysis import isoflop
from analysis import laws
from analysis import runs

NAMES = {1: 'Minimum over training curves', 2: 'IsoFLOP profiles',
         3: 'Parametric modelling of the loss'}
APPROACH1_RESAMPLES = 100


@dataclasses.dataclass
class Row:
  approach: int
  a: float | None = None
  b: float | None = None
  a_ci95: list | None = None
  b_ci95: list | None = None
  why_not: str | None = None  # set when the approach does not apply
  notes: list = dataclasses.field(default_factory=list)
  details: dict = dataclasses.field(default_factory=dict)

  def to_json(self) -> dict:
    out = {'approach': self.approach, 'name': NAMES[self.approach],
           'applies': self.why_not is None}
    if self.why_not:
      return {**out, 'why_not': self.why_not}
    return {**out, 'a': self.a, 'a_ci95': self.a_ci95, 'b': self.b, 'b_ci95': self.b_ci95,
            'notes': self.notes, **self.details}


def _ci(samples) -> list | None:
  s = np.asarray(samples, float)
  s = s[np.isfinite(s)]
  return [float(v) for v in np.percentile(s, [2.5, 97.5])] if len(s) > 1 else None


def _schedules(root: pathlib.Path, names) -> dict:
  """Each run's learning-rate schedule, from its config.json (docs/run-format.md)."""
  out = {}
  for name in names:
    try:
      out[name] = json.loads((root / name / 'config.json').read_text()).get('schedule')
    except (OSError, json.JSONDecodeError):
      out[name] = None
  return out


def approach1(source: dict, table: pd.DataFrame, seed: int) -> Row:
  """The envelope of the eval curves of the runs in the fit (same N, C and loss columns)."""
  if 'runs' not in source:
    return Row(1, why_not='needs training curves: pass --runs (a CSV holds one point per run)')
  with warnings.catch_warnings():  # load_table already warned about excluded runs
    warnings.simplefilter('ignore')
    loaded = runs.load(source['runs'])
  kept = set(table['run']) if 'run' in table else set(loaded.table['run'])
  curves = loaded.curves[loaded.curves['run'].isin(kept)]
  units = table.attrs.get('units', {})
  c_col = 'C_chinchilla' if 'kaplan' not in units.get('C', '') else 'C_kaplan'
  n_col = 'N_nonembedding' if 'non-embedding' in units.get('N', '') else 'N'
  curves = pd.DataFrame({'run': curves['run'], 'N': curves[n_col], 'D': curves['tokens'],
                         'C': (6 * curves[n_col] * curves['tokens']
                               if units.get('C') == 'C = 6ND' else curves[c_col]),
                         'loss': curves['eval_loss']}).dropna()
  try:
    opt = approaches.approach1(curves)
  except errors.InputError as e:
    return Row(1, why_not=str(e))
  boot = approaches.approach1_bootstrap(curves, APPROACH1_RESAMPLES, seed)
  info = loaded.table[loaded.table['run'].isin(kept)].copy()
  info['schedule'] = info['run'].map(_schedules(pathlib.Path(source['runs']), info['run']))
  warn = approaches.single_length_warning(info)
  return Row(1, opt.n_opt.exponent, opt.d_opt.exponent, _ci(boot['a']), _ci(boot['b']),
             notes=[warn] if warn else [],
             details={'resampling': f'{APPROACH1_RESAMPLES} resamples of whole runs',
                      'eval_points': len(curves)})


def approach2(table: pd.DataFrame, estimator: str | None, n_resamples: int,
              seed: int) -> tuple[Row, isoflop.Result | None]:
  """Approach 2; with estimator None (not asked for) a table without budgets is not an error."""
  try:
    r = isoflop.approach2(table, estimator or 'parabola', n_resamples, seed,
                          strict=estimator is not None)
  except errors.InputError as e:
    if estimator:
      raise
    return Row(2, why_not=str(e)), None
  return Row(2, r.a, r.b, r.ci95('a'), r.ci95('b'), notes=list(r.warnings),
             details={k: v for k, v in r.to_json().items()
                      if k not in ('a', 'b', 'a_ci95', 'b_ci95', 'warnings')}), r


def approach3(result: dict, samples: dict | None) -> Row:
  if result['law'] != 'chinchilla':
    return Row(3, why_not=f'--law={result["law"]} has no N and D terms; use --law=chinchilla')
  ci = {}
  if samples:
    a_s, b_s = laws.exponents(np.asarray(samples['alpha']), np.asarray(samples['beta']))
    ci = {'a_ci95': _ci(a_s), 'b_ci95': _ci(b_s)}
  return Row(3, result['a'], result['b'], **ci)


def disagreements(rows: list[Row]) -> list[str]:
  """Pairs of approaches whose 95% intervals of a (or b) do not overlap."""
  out = []
  for x, y in itertools.combinations([r for r in rows if r.why_not is None], 2):
    for key in ('a', 'b'):
      cx, cy = getattr(x, f'{key}_ci95'), getattr(y, f'{key}_ci95')
      if cx and cy and (cx[1] < cy[0] or cy[1] < cx[0]):
        out.append(f'Approaches {x.approach} and {y.approach} disagree on {key} beyond their 95% '
                   f'intervals ({getattr(x, key):.3f} [{cx[0]:.3f}, {cx[1]:.3f}] vs '
                   f'{getattr(y, key):.3f} [{cy[0]:.3f}, {cy[1]:.3f}]): a finding about the '
                   'data or the estimators, not noise')
  return out


def to_json(rows: list[Row]) -> dict:
  return {'rows': [r.to_json() for r in rows], 'disagreements': disagreements(rows)}


def _cell(value, ci) -> str:
  if value is None:
    return ''
  return f'{value:.3f} ({ci[0]:.3f}, {ci[1]:.3f})' if ci else f'{value:.3f}'


def lines(rows: list[Row], extra: list[tuple[str, dict]] = ()) -> list[str]:
  """The printed table; extra rows (label, {'a', 'a_ci95', 'b', 'b_ci95'}) go below, e.g. the
  published Table 2."""
  out = [f'{"Approach":<44}{"a, N_opt ∝ C^a":<26}{"b, D_opt ∝ C^b":<26}']
  for r in rows:
    label = f'{r.approach}. {NAMES[r.approach]}'
    if r.why_not:
      out.append(f'{label:<44}does not apply: {r.why_not}')
    else:
      out.append(f'{label:<44}{_cell(r.a, r.a_ci95):<26}{_cell(r.b, r.b_ci95):<26}')
      out += [f'{"":<4}note: {n}' for n in r.notes]
  for label, p in extra:
    out.append(f'{label:<44}{_cell(p["a"], p.get("a_ci95")):<26}'
               f'{_cell(p["b"], p.get("b_ci95")):<26}')
  out += disagreements(rows)
  return out



def isoflop_row(table: pd.DataFrame, estimator: str | None, n_resamples: int, seed: int):
  """Approach 2 for analysis.fit, run before the slow Approach-3 fit so bad budgets fail fast;
  the Approach-3 bootstrap count is reused when it has at least 2 resamples."""
  return approach2(table, estimator, n_resamples if n_resamples >= 2 else isoflop.N_RESAMPLES,
                   seed)


def rows(source: dict, table: pd.DataFrame, result: dict, samples: dict | None, row2: Row,
         seed: int) -> list[Row]:
  return [approach1(source, table, seed), row2, approach3(result, samples)]
