"""Fit the data-constrained law (analysis.laws.data_constrained; Muennighoff et al. 2023) to runs
that repeat data, with the one engine (analysis.engine) and its bootstrap:

1. the Chinchilla part (E, A, B, α, β): taken from a `--base-fit` fit.json of a --law=chinchilla
   fit and held fixed (the paper's way), or else started from a Chinchilla fit of the points that
   do not repeat data (D ≤ U);
2. R_D* and R_N* (the repeats of data, and of excess parameters, after which their worth has
   decayed by 1/e): from the grid of log R* starts with the Chinchilla part held at its start;
   then, when that part was not given, everything together from the best of those (even one epoch
   of U tokens discounts parameters beyond those compute-optimal for U, so the points of at most
   one epoch are not exactly Chinchilla's).

U is each point's unique tokens (runs: run.json's corpus.tokens_per_epoch; CSV: --columns U=...).
R_N* is reported only when some point has more parameters than are compute-optimal for its unique
data (N > U_N); otherwise no point constrains it: it is held and reported as None. A fit (or a
resample) whose R* ends outside R_RANGE is not converged: no point pins it down.
"""

import dataclasses

import numpy as np
import pandas as pd

from analysis import engine
from analysis import errors
from analysis import intervals
from analysis import laws

LAW = laws.DATA_CONSTRAINED
R_RANGE = (1e-2, 1e5)  # repeats; beyond them R* is not identified by the points
CHINCHILLA_KEYS = ('E', 'A', 'B', 'alpha', 'beta')


@dataclasses.dataclass
class Result:
  fit: engine.LawFit  # the row of LAW and the bootstrap
  held: engine.Held  # the problem on the fitted coordinates (the bootstrap refits it)
  base: str  # where the Chinchilla part came from
  n_points: int
  n_repeating: int  # points with D > U
  n_excess_params: int  # points with N > U_N
  converged: bool

  @property
  def params(self) -> dict:
    p = self.fit.params
    return {**p, 'R_N_star': p['R_N_star'] if self.n_excess_params else None}


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
  if (len(points) < laws.CHINCHILLA.n_params or points['N'].nunique() < 3 or
      points['D'].nunique() < 3):
    return None
  return engine.fit_law(laws.CHINCHILLA, points).params


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


def _identified(x_nxQ: np.ndarray, excess: bool) -> np.ndarray:
  log_r = x_nxQ[:, :2 if excess else 1]
  return ((log_r > np.log(R_RANGE[0])) & (log_r < np.log(R_RANGE[1]))).all(1)


def fit(table: pd.DataFrame, base: dict | None = None, base_name: str | None = None) -> Result:
  """`base`: the Chinchilla part, held fixed; None fits it jointly (see the module docstring)."""
  check(table)
  start = LAW.row({**(base or fit_base(table)), 'R_D_star': 1.0, 'R_N_star': 1.0})
  p0 = LAW.named(start)
  N, D, U = (table[k].to_numpy(float) for k in ('N', 'D', 'U'))
  U_N = np.minimum(N, laws.optimal_params_for_tokens(np.minimum(U, D), p0['A'], p0['B'],
                                                     p0['alpha'], p0['beta']))
  excess = int((N > U_N * (1 + 1e-9)).sum())
  free = np.array([True, bool(excess)] + [base is None] * 5)
  grid = np.unique(LAW.starts()[:, :2 if excess else 1], axis=0)
  stage = engine.Held(engine.problem(LAW, table), np.array([True, bool(excess)] + [False] * 5),
                      start)
  best = engine.fit(stage, grid)
  held = engine.Held(stage.problem, free, stage.full(best.x[None])[0])
  if base is None:
    best = engine.fit(held, held.x_Q[free][None])
  x = held.full(best.x[None])
  name = base_name or ('fitted jointly, started from a Chinchilla fit of the points of at most '
                       'one epoch' if base is None else 'given')
  return Result(engine.LawFit(LAW, dataclasses.replace(best, x=x[0])), held, name, len(table),
                int((D > U).sum()), excess, best.converged and bool(_identified(x, excess)[0]))


def bootstrap(result: Result, weights_RxP: np.ndarray, cold_share: float = 0.0,
              seed: int = 0) -> dict:
  """The engine's bootstrap of the fitted coordinates, kept in result.fit.boot: every resample
  warm-started at the fit, a share also from the grid of R* starts; a resample whose R* is not
  identified is not converged. Returns fit.json's `bootstrap`: bookkeeping, and 95% intervals and
  standard errors of every parameter that the converged resamples identify."""
  held, free = result.held, result.held.free_Q
  z = result.fit.best.x[free]
  cold = np.unique(LAW.starts()[:, :2 if result.n_excess_params else 1], axis=0)
  cold_starts = np.concatenate([cold, np.repeat(held.x_Q[None, free][:, cold.shape[1]:],
                                                len(cold), 0)], 1)
  boot = engine.bootstrap_with_cold_starts(held, z, weights_RxP, cold_starts, cold_share, seed)
  x_RxQ = held.full(boot.x_RxQ)
  converged = boot.converged_R & _identified(x_RxQ, bool(result.n_excess_params))
  result.fit.boot = boot = dataclasses.replace(boot, x_RxQ=x_RxQ, converged_R=converged)
  samples = result.fit.samples or {}
  keys = CHINCHILLA_KEYS + ('R_D_star',) + (('R_N_star',) if result.n_excess_params else ())
  stderr, ci95 = intervals.summarize({k: samples[k] for k in keys if k in samples})
  return {**boot.summary(), 'seed': seed, 'ci95': ci95, 'stderr': stderr}


def to_json(result: Result, table: pd.DataFrame) -> dict:
  p = result.params
  r = np.log(LAW.predict(p, **{k: table[k].to_numpy(float) for k in LAW.variables}))
  r -= np.log(table['loss'].to_numpy(float))
  return {'law': 'data_constrained', 'n_points': result.n_points, 'params': p,
          'objective': result.fit.best.objective, 'converged': result.converged,
          'base': result.base, 'points_repeating_data': result.n_repeating,
          'points_with_excess_params': result.n_excess_params,
          'convention': 'U_N from the Chinchilla part\'s compute-optimal allocation at C = 6ND',
          'residuals': {'rms_log': float(np.sqrt(np.mean(r**2))),
                        'median_abs_log': float(np.median(np.abs(r)))}}


def lines(result: Result, boot_json: dict | None = None) -> list[str]:
  p, ci = result.params, (boot_json or {}).get('ci95', {})
  shown = lambda k: f'{p[k]:.4g}' + (f' [{ci[k][0]:.4g}, {ci[k][1]:.4g}]' if ci.get(k) else '')
  r_n = 'not identified (no point has N > U_N)' if p['R_N_star'] is None else shown('R_N_star')
  out = [f'law data_constrained: {result.n_points} points ({result.n_repeating} repeat data), '
         f'Chinchilla part {result.base}, converged {result.converged}',
         '  ' + ', '.join(f'{k} {shown(k)}' for k in CHINCHILLA_KEYS),
         f'  R_D* {shown("R_D_star")} (repeats after which repeated data is worth 1/e as much), '
         f'R_N* {r_n}']
  if boot_json:
    out.append(f'  [95% intervals from {boot_json["converged"]} of {boot_json["resamples"]} '
               'bootstrap resamples of the points]')
  return out
