"""Chinchilla's three approaches side by side, in the layout of their Table 2 (a and b, with 95%
intervals, one row per approach), and where they disagree beyond those intervals.

Approach 1 (envelope of training curves, analysis/approach1.py) applies when the curves exist
(runs); Approach 2 (IsoFLOP profiles, analysis/approach2.py) when budgets have enough sizes;
Approach 3 (the fitted L(N, D)) always. An approach that does not apply says why in one line.
"""

import dataclasses
import itertools

import numpy as np

from analysis import approach1
from analysis import approach2
from analysis import errors
from analysis import intervals
from analysis import laws
from analysis import study as study_lib

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


def approach1_row(study: study_lib.Study, seed: int) -> Row:
  """The envelope of the eval curves of the runs in the fit (same N, C and loss columns)."""
  if study.runs is None:
    return Row(1, why_not='needs training curves: pass --runs (a CSV holds one point per run)')
  curves = approach1.curves(study)
  try:
    opt = approach1.approach1(curves)
  except errors.InputError as e:
    return Row(1, why_not=str(e))
  boot = approach1.approach1_bootstrap(curves, APPROACH1_RESAMPLES, seed)
  runs = study.runs.table
  warn = approach1.single_length_warning(runs[runs['run'].isin(set(study.table['run']))])
  return Row(1, opt.n_opt.exponent, opt.d_opt.exponent, intervals.ci95(boot['a']),
             intervals.ci95(boot['b']), notes=[warn] if warn else [],
             details={'resampling': f'{APPROACH1_RESAMPLES} resamples of whole runs',
                      'eval_points': len(curves)})


def approach2_row(result: approach2.Result, notes: list[str] | None = None) -> Row:
  return Row(2, result.a, result.b, result.ci95('a'), result.ci95('b'),
             notes=list(result.warnings) if notes is None else notes,
             details={k: v for k, v in result.to_json().items()
                      if k not in ('a', 'b', 'a_ci95', 'b_ci95', 'warnings')})


def approach3_row(law: str, params: dict, samples: dict | None) -> Row:
  """a = β/(α+β) of the fitted Chinchilla law, per bootstrap resample for its interval."""
  if law != 'chinchilla':
    return Row(3, why_not=f'--law={law} has no N and D terms; use --law=chinchilla')
  a, b = laws.exponents(params['alpha'], params['beta'])
  if not samples:
    return Row(3, a, b)
  a_s, b_s = laws.exponents(np.asarray(samples['alpha']), np.asarray(samples['beta']))
  return Row(3, a, b, intervals.ci95(a_s), intervals.ci95(b_s))


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
