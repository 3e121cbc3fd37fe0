"""Fit the data-constrained law (analysis.laws.data_constrained; Muennighoff et al. 2023) to runs
that repeat data:

1. the Chinchilla part (E, A, B, α, β): taken from a `--base-fit` fit.json of a --law=chinchilla
   fit and held fixed (the paper's way), or else started from a Chinchilla fit of the points that
   do not repeat data (D ≤ U) with the same Huber objective;
2. R_D* and R_N* (the repeats of data, and of excess parameters, after which their worth has
   decayed by 1/e): a Huber loss on log residuals, minimised by scipy's L-BFGS-B over log R* from
   a grid of starts, jointly with the Chinchilla part when it was not given (even one epoch of
   U tokens discounts parameters beyond those compute-optimal for U, so the points of at most one
   epoch are not exactly Chinchilla's).

U is each point's unique tokens (runs: run.json's corpus.tokens_per_epoch; CSV: --columns U=...).
R_N* is reported only when some point has more parameters than are compute-optimal for its unique
data (N > U_N); otherwise no point constrains it and it is None.
"""

import dataclasses

import numpy as np
import pandas as pd
from scipy import optimize

from analysis import errors
from analysis import fitting
from analysis import laws

HUBER_DELTA = 1e-3  # as the Chinchilla fit (analysis.objective)
LOG_R_STARTS = np.log([1.0, 10.0, 100.0])
LOG_R_BOUNDS = (np.log(1e-2), np.log(1e5))
CHINCHILLA_KEYS = ('E', 'A', 'B', 'alpha', 'beta')


@dataclasses.dataclass
class Result:
  params: dict  # E, A, B, alpha, beta, R_D_star, R_N_star (None when not identified)
  base: str  # where the Chinchilla part came from
  n_points: int
  n_repeating: int  # points with D > U
  n_excess_params: int  # points with N > U_N
  objective: float
  converged: bool


def _huber(r: np.ndarray) -> float:
  a = np.abs(r)
  return float(np.sum(np.where(a <= HUBER_DELTA, 0.5 * r**2, HUBER_DELTA * (a - 0.5 * HUBER_DELTA))))


def check(table: pd.DataFrame) -> None:
  if 'U' not in table:
    raise errors.InputError('--law=data_constrained needs each point\'s unique tokens U: runs record '
                            'it as corpus.tokens_per_epoch (tokens:DIR or textdir data); for a CSV '
                            'map it with --columns U=<column>')
  u = table['U'].to_numpy(float)
  if not (np.isfinite(u) & (u > 0)).all():
    raise errors.InputError(f'--law=data_constrained: {int((~(np.isfinite(u) & (u > 0))).sum())} '
                            'points have no unique-token count U (e.g. tfds: runs); drop them')
  if not (table['D'] > table['U']).any():
    raise errors.InputError('--law=data_constrained: no point repeats data (every D <= U), so '
                            'R_D* is not identified; add runs of more than one epoch')


def _chinchilla(points: pd.DataFrame) -> dict | None:
  if len(points) < laws.CHINCHILLA.n_params or points['N'].nunique() < 3 or points['D'].nunique() < 3:
    return None
  fit = fitting.fit(fitting.problem(laws.CHINCHILLA, points, points['loss']),
                    fitting.grid_starts(laws.CHINCHILLA))
  return {k: float(v) for k, v in laws.CHINCHILLA.named(fit.x).items()}


def fit_base(table: pd.DataFrame) -> dict:
  """A start for the Chinchilla part: its fit on the points that see each token at most once,
  refitted on those of them whose N is within the compute-optimal size for their data, where the
  law is exactly Chinchilla's (when enough such points remain)."""
  fresh = table[table['D'] <= table['U']]
  base = _chinchilla(fresh)
  if base is None:
    raise errors.InputError(f'--law=data_constrained: {len(fresh)} points of at most one epoch '
                            f'({fresh["N"].nunique()} sizes) cannot fit the Chinchilla part; give '
                            'a fit.json of a --law=chinchilla fit with --base-fit, or more runs')
  n_opt = laws.optimal_params_for_tokens(fresh['D'].to_numpy(float), base['A'], base['B'],
                                         base['alpha'], base['beta'])
  within = fresh['N'].to_numpy(float) <= n_opt
  return base if within.all() else _chinchilla(fresh[within]) or base


def _to_row(base: dict) -> np.ndarray:
  return np.array([np.log(base['E']), np.log(base['A']), np.log(base['B']), base['alpha'],
                   base['beta']])


def _from_row(x: np.ndarray) -> dict:
  return dict(E=np.exp(x[0]), A=np.exp(x[1]), B=np.exp(x[2]), alpha=x[3], beta=x[4])


def fit(table: pd.DataFrame, base: dict | None = None, base_name: str | None = None,
        warm: dict | None = None) -> Result:
  """`base`: the Chinchilla part, held fixed; None fits it jointly (see the module docstring).
  `warm`: the params of a fit to similar points (a bootstrap's full fit): the Chinchilla part
  starts there instead of at a Chinchilla fit, and its R* joins the grid of R* starts."""
  check(table)
  joint = base is None
  start = _to_row(base if not joint else warm if warm else fit_base(table))
  N, D, U = (table[k].to_numpy(float) for k in ('N', 'D', 'U'))
  logy = np.log(table['loss'].to_numpy(float))
  p0 = _from_row(start)
  U_N = np.minimum(N, laws.optimal_params_for_tokens(np.minimum(U, D), p0['A'], p0['B'],
                                                     p0['alpha'], p0['beta']))
  excess = int((N > U_N * (1 + 1e-9)).sum())
  dims = 2 if excess else 1

  def objective(x):
    chin = _from_row(x[dims:] if joint else start)
    r_d, r_n = np.exp(x[0]), (np.exp(x[1]) if excess else 1.0)
    with np.errstate(over='ignore', invalid='ignore', divide='ignore'):
      pred = laws.data_constrained(N, D, U, **chin, R_D_star=r_d, R_N_star=r_n)
      value = _huber(np.log(pred) - logy)
    return value if np.isfinite(value) else 1e30

  # R* from a grid of starts with the Chinchilla part at its start; then, when that part was not
  # given, everything together from the best of those.
  fixed = lambda x: objective(np.concatenate([x, start])) if joint else objective(x)
  grid = np.array(np.meshgrid(*[LOG_R_STARTS] * dims)).reshape(dims, -1).T
  if warm:  # its R* too: a flat direction (a poorly identified R*) then shows as a wide interval
    grid = np.vstack([grid, np.log([[warm['R_D_star'], warm['R_N_star'] or 1.0][:dims]])])
  best = min((optimize.minimize(fixed, g, method='L-BFGS-B', bounds=[LOG_R_BOUNDS] * dims)
              for g in grid), key=lambda r: r.fun)
  if joint:
    best = optimize.minimize(objective, np.concatenate([best.x, start]), method='L-BFGS-B',
                             bounds=[LOG_R_BOUNDS] * dims + [(None, None)] * 3 + [(1e-3, 3.0)] * 2)
  at_bound = np.any(np.isclose(best.x[:dims], LOG_R_BOUNDS, atol=1e-3))
  chin = {k: float(v) for k, v in _from_row(best.x[dims:] if joint else start).items()}
  params = {**chin, 'R_D_star': float(np.exp(best.x[0])),
            'R_N_star': float(np.exp(best.x[1])) if excess else None}
  base_name = base_name or ('fitted jointly, started from a Chinchilla fit of the points of at '
                            'most one epoch' if joint else 'given')
  return Result(params, base_name, len(table), int((D > U).sum()), excess, float(best.fun),
                bool(best.success and not at_bound))


def bootstrap(table: pd.DataFrame, full: Result, base: dict | None, n: int, seed: int = 0) -> dict:
  """Percentile intervals and standard errors of every parameter over `n` refits to the points
  resampled with replacement, each started from the full fit (the Chinchilla part held at `base`
  when given). A resample that repeats no data, or whose fit does not converge, is left out."""
  rng = np.random.default_rng(seed)
  fits = []
  for _ in range(n):
    sample = table.iloc[rng.integers(0, len(table), len(table))]
    try:
      result = fit(sample, base, warm=full.params)
    except errors.InputError:
      continue
    if result.converged:
      fits.append(result.params)
  out = {'resamples': n, 'converged': len(fits), 'seed': seed, 'ci95': {}, 'stderr': {}}
  for k in (*CHINCHILLA_KEYS, 'R_D_star', 'R_N_star'):
    values = np.array([f[k] for f in fits if f[k] is not None], float)
    if len(values) >= 2:
      out['ci95'][k] = [float(v) for v in np.percentile(values, [2.5, 97.5])]
      out['stderr'][k] = float(values.std(ddof=1))
  return out


def to_json(result: Result, table: pd.DataFrame) -> dict:
  p = result.params
  pred = laws.data_constrained(*(table[k].to_numpy(float) for k in ('N', 'D', 'U')),
                               **{**p, 'R_N_star': p['R_N_star'] or 1.0})
  r = np.log(pred) - np.log(table['loss'].to_numpy(float))
  return {'law': 'data_constrained', 'n_points': result.n_points, 'params': p,
          'objective': result.objective, 'converged': result.converged,
          'base': result.base, 'points_repeating_data': result.n_repeating,
          'points_with_excess_params': result.n_excess_params,
          'convention': 'U_N from the Chinchilla part\'s compute-optimal allocation at C = 6ND',
          'residuals': {'rms_log': float(np.sqrt(np.mean(r**2))),
                        'median_abs_log': float(np.median(np.abs(r)))}}


def lines(result: Result, intervals: dict | None = None) -> list[str]:
  p, ci = result.params, (intervals or {}).get('ci95', {})
  shown = lambda k: f'{p[k]:.4g}' + (f' [{ci[k][0]:.4g}, {ci[k][1]:.4g}]' if k in ci else '')
  r_n = 'not identified (no point has N > U_N)' if p['R_N_star'] is None else shown('R_N_star')
  out = [f'law data_constrained: {result.n_points} points ({result.n_repeating} repeat data), '
          f'Chinchilla part {result.base}, converged {result.converged}',
          '  ' + ', '.join(f'{k} {shown(k)}' for k in CHINCHILLA_KEYS),
          f'  R_D* {shown("R_D_star")} (repeats after which repeated data is worth 1/e as much), '
          f'R_N* {r_n}']
  if intervals:
    out.append(f'  [95% intervals from {intervals["converged"]} of {intervals["resamples"]} '
               'bootstrap resamples of the points]')
  return out
