"""Chinchilla's Approach 2: the optimum of each IsoFLOP budget, and power laws across budgets.

Each budget's profile and the estimator of its minimum (default `akima`, Porian et al.'s) are in
analysis/isoflop.py. Power laws: log N_opt = log k + a log C by weighted least squares, each
budget weighted by the precision 1/σ² of its log N_opt, σ the bootstrap standard deviation
(Porian et al.'s weighting), floored at a third of the budget's mean log spacing of sizes so that
no budget claims a precision its sizes cannot resolve (their floor too). D_opt is read off each
budget's points by interpolating log D against log N at N_opt, so b needs no FLOP convention.

Intervals for a and b are percentiles of the same fit over bootstrap resamples, each budget
resampled independently, in one of two ways (`noise_for` picks one from --isoflop-resampling):
- Gaussian noise added to every loss (Porian et al.'s model of seed noise): of a stated σ, or of
  each point's own `loss_stderr` (runs log eval_loss_stderr: the eval noise, a floor on seed noise);
- the budget's points drawn with replacement (`points`). With one point per size, as a sweep
  has, a resample drops about a third of the sizes, so budgets whose minimum is near an end turn
  `unstable` and drop out; it is the fallback when no noise is known.
"""

import dataclasses

import numpy as np
import pandas as pd

from analysis import errors
from analysis import intervals
from analysis import isoflop

N_RESAMPLES = 200
UNSTABLE = 0.5  # left out: a budget unbracketed in more than this share of its resamples
Noise = float | str | None  # σ in loss units, 'stderr' (each point's loss_stderr), None (points)


def noise_for(table: pd.DataFrame, spec: str) -> tuple[Noise, str | None]:
  """--isoflop-resampling (auto, points, stderr or σ) as approach2's noise, and a note when
  `auto` falls back to resampling points."""
  stderr = table['loss_stderr'].to_numpy(float) if 'loss_stderr' in table else np.array([np.nan])
  has_stderr = bool((np.isfinite(stderr) & (stderr > 0)).all())
  if spec == 'points' or (spec == 'auto' and not has_stderr):
    return None, None if spec == 'points' else (
        'no loss noise known (no loss_stderr column), so each budget\'s points are resampled; '
        'pass --isoflop-resampling=SIGMA, the loss\'s seed noise, for Porian et al.\'s model')
  if spec in ('auto', 'stderr'):
    if not has_stderr:
      raise errors.InputError('--isoflop-resampling=stderr needs a finite loss_stderr > 0 on every '
                              'point: map it with --columns loss_stderr=<column>, or give a σ')
    return 'stderr', None
  try:
    sigma = float(spec)
  except ValueError:
    sigma = np.nan
  if not (np.isfinite(sigma) and sigma > 0):
    raise errors.InputError(f'--isoflop-resampling={spec!r}: use auto, points, stderr or a noise '
                            'σ > 0 in loss units')
  return sigma, None


def _resampled(p: isoflop.Profile, estimator: str, n: int, rng, noise: Noise) -> np.ndarray:
  """log N_opt of each resample of one budget's points (NaN where unbracketed)."""
  u_all, loss_all = np.log(p.points['N'].to_numpy()), p.points['loss'].to_numpy()
  size_P = np.searchsorted(p.logn, u_all)  # p.logn holds the distinct sizes, sorted
  onehot_PxS = (size_P[:, None] == np.arange(len(p.logn))).astype(float)
  if noise is not None:  # one set of sizes: every resample at once
    sigma = p.points['loss_stderr'].to_numpy(float) if noise == 'stderr' else noise
    loss_RxP = loss_all + rng.normal(0.0, sigma, (n, len(u_all)))
    loss_SxR = (onehot_PxS / onehot_PxS.sum(0)).T @ loss_RxP.T
    if estimator == 'akima':
      return isoflop.akima_minima(p.logn, loss_SxR)
    return np.array([isoflop.minimum(p.logn, loss_SxR[:, r], estimator) for r in range(n)])
  out = np.full(n, np.nan)
  for r in range(n):
    pick = rng.integers(0, len(u_all), len(u_all))
    count_S = np.bincount(size_P[pick], minlength=len(p.logn))
    sum_S = np.bincount(size_P[pick], weights=loss_all[pick], minlength=len(p.logn))
    have = count_S > 0
    out[r] = isoflop.minimum(p.logn[have], sum_S[have] / count_S[have], estimator)
  return out


def _weighted_fit(x: np.ndarray, y_RxG: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Weighted least-squares (slope, intercept) of each row of y against x, skipping NaNs."""
  m = np.isfinite(y_RxG) * w
  y = np.where(np.isfinite(y_RxG), y_RxG, 0.0)
  with np.errstate(all='ignore'):
    sw = m.sum(1)
    mx, my = (m * x).sum(1) / sw, (m * y).sum(1) / sw
    dx = x - mx[:, None]
    slope = (m * dx * (y - my[:, None])).sum(1) / (m * dx**2).sum(1)
  enough = (m > 0).sum(1) >= 2
  return np.where(enough, slope, np.nan), np.where(enough, my - slope * mx, np.nan)


@dataclasses.dataclass
class Result:
  optima: pd.DataFrame  # one row per budget: C, status, N, D, loss, log_n_std, weight, ...
  a: float
  b: float
  k_n: float  # N_opt = k_n C^a
  k_d: float
  a_samples: np.ndarray
  b_samples: np.ndarray
  settings: dict
  warnings: list[str]
  profiles: list[isoflop.Profile]  # in the order of optima's rows

  def curve(self, i: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, fitted loss) of budget i, for the IsoFLOP figure."""
    return isoflop.curve(self.profiles[i], self.settings['estimator'])

  def ci95(self, key: str) -> list[float] | None:
    return intervals.ci95(getattr(self, f'{key}_samples'))

  def to_json(self) -> dict:
    cols = ['C', 'status', 'n_sizes', 'n_points', 'N', 'D', 'loss', 'log_n_std', 'weight']
    return {**self.settings, 'a': self.a, 'b': self.b, 'a_ci95': self.ci95('a'),
            'b_ci95': self.ci95('b'), 'k_n': self.k_n, 'k_d': self.k_d,
            'budgets': [{k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                         for k, v in row.items()}
                        for row in self.optima[cols].to_dict('records')],
            'warnings': self.warnings}


def _optimum(p: isoflop.Profile, estimator: str, n: int, rng, noise: Noise) -> tuple[dict, np.ndarray]:
  """One budget's row of `optima`, and its bootstrap log N_opt."""
  u_star = isoflop.minimum(p.logn, p.loss, estimator)
  boot = _resampled(p, estimator, n, rng, noise)
  valid = np.isfinite(boot)
  floor = np.diff(p.logn).mean() / 3
  std = max(float(np.std(boot[valid], ddof=1)) if valid.sum() > 1 else np.nan, floor)
  status = ('unbracketed' if not np.isfinite(u_star) else
            'unstable' if valid.mean() < 1 - UNSTABLE else 'ok')
  N = float(np.exp(u_star)) if np.isfinite(u_star) else np.nan
  D = float(np.exp(np.interp(u_star, p.logn, p.logd))) if np.isfinite(u_star) else np.nan
  return {'C': p.C, 'status': status, 'n_sizes': len(p.logn), 'n_points': len(p.points),
          'N': N, 'D': D, 'loss': isoflop.loss_at(p, u_star, estimator), 'log_n_std': std,
          'weight': 1 / std**2 if status == 'ok' else 0.0,
          'N_min': float(np.exp(p.logn[0])), 'N_max': float(np.exp(p.logn[-1]))}, boot


def _left_out(optima: pd.DataFrame, small: list[str]) -> list[str]:
  warn = []
  if small:
    warn.append(f'left out, fewer than {isoflop.MIN_SIZES} sizes: {len(small)} group'
                f'{"s" * (len(small) != 1)} of points, {", ".join(small)}')
  for status, why in (('unbracketed', 'its minimum is at or beyond the smallest or largest size '
                                      'trained there'),
                      ('unstable', f'its minimum is unbracketed in over {UNSTABLE:.0%} of the '
                                   'bootstrap resamples')):
    bad = optima[optima['status'] == status]
    if len(bad):
      warn.append(f'left out of the power law, {why}: ' + ', '.join(
          f'C={r.C:.3g} (N {r.N_min:.3g}..{r.N_max:.3g})' for r in bad.itertuples()))
  return warn


def _power_laws(optima: pd.DataFrame, profs: list, logn_BxR: list) -> tuple:
  """(a, log k_n, b, log k_d) through the bracketed budgets, and a and b of every resample."""
  ok = optima['status'] == 'ok'
  logc = np.log(optima['C'].to_numpy()[ok])
  w = optima['weight'].to_numpy()[ok]
  a, log_kn = (v[0] for v in _weighted_fit(logc, np.log(optima['N'].to_numpy()[ok])[None], w))
  b, log_kd = (v[0] for v in _weighted_fit(logc, np.log(optima['D'].to_numpy()[ok])[None], w))
  boot_n = np.array(logn_BxR)[ok.to_numpy()].T
  profs_ok = [p for p, good in zip(profs, ok) if good]
  boot_d = np.array([np.interp(boot_n[:, i], p.logn, p.logd) for i, p in enumerate(profs_ok)]).T
  boot_d[~np.isfinite(boot_n)] = np.nan
  return (a, log_kn, b, log_kd), (_weighted_fit(logc, boot_n, w)[0],
                                  _weighted_fit(logc, boot_d, w)[0])


def _resampling(noise: Noise) -> str:
  if noise is None:
    return 'points drawn with replacement within each budget'
  what = "each point's loss_stderr" if noise == 'stderr' else f'{noise:g}'
  return f'Gaussian noise of {what} added to every loss (seed-noise model)'


def _settings(estimator: str, grouping: str, noise: Noise, n_resamples: int, seed: int) -> dict:
  return {
      'estimator': estimator,
      'rule': (f'parabola in log N through the best observed size and its {isoflop.WINDOW} nearest '
               'sizes on each side' if estimator == 'parabola' else
               f'Akima interpolation of log loss vs log N, argmin on a grid of step '
               f'{isoflop.GRID_STEP} in log N'),
      'grouping': grouping,
      'weighting': ('1/std^2 of each budget\'s bootstrap log N_opt, std floored at 1/3 of the '
                    'budget\'s mean log spacing of sizes'),
      'resampling': _resampling(noise), 'noise': 'loss_stderr' if noise == 'stderr' else noise,
      'n_resamples': n_resamples, 'seed': seed}


def _no_budgets(table: pd.DataFrame, small: list[str], rtol: float) -> errors.InputError:
  if 'budget' in table and table['budget'].notna().all():
    return errors.InputError(f'no recorded budget has >= {isoflop.MIN_SIZES} sizes '
                             f'({", ".join(small)}): add runs at shared budgets')
  return errors.InputError(
      'no IsoFLOP budget with >= 3 sizes: the table has no budget column and no 3 sizes share '
      f'a C within {rtol:.0%}; add a budget column or name one with --columns=budget=COL')


def approach2(table: pd.DataFrame, estimator: str = isoflop.ESTIMATORS[0],
              n_resamples: int = N_RESAMPLES, seed: int = 0, noise: Noise = None,
              rtol: float = isoflop.RTOL, strict: bool = True) -> Result:
  """Optima of every budget, weighted power laws across the bracketed ones, bootstrap intervals.

  noise: see `Noise`. strict: a recorded budget with fewer than MIN_SIZES sizes is an error,
  else a note."""
  if estimator not in isoflop.ESTIMATORS:
    raise errors.InputError(f'--isoflop={estimator!r}: use one of {", ".join(isoflop.ESTIMATORS)}')
  if n_resamples < 2:
    raise errors.InputError(f'IsoFLOP bootstrap needs >= 2 resamples, got {n_resamples}')
  profs, grouping, small = isoflop.profiles(table, rtol, strict)
  if not profs:
    raise _no_budgets(table, small, rtol)
  rng = np.random.default_rng(seed)
  rows, logn_BxR = zip(*(_optimum(p, estimator, n_resamples, rng, noise) for p in profs))
  optima = pd.DataFrame(list(rows))
  warn = _left_out(optima, small)
  ok = int((optima['status'] == 'ok').sum())
  if ok < 2:
    raise errors.InputError(
        f'only {ok} of {len(optima)} IsoFLOP budgets bracket their minimum; a power '
        'law needs 2: add sizes on the open side of the unbracketed budgets'
        + (f' ({"; ".join(warn)})' if warn else ''))
  (a, log_kn, b, log_kd), (a_s, b_s) = _power_laws(optima, profs, list(logn_BxR))
  settings = {**_settings(estimator, grouping, noise, n_resamples, seed),
              'n_budgets': len(optima), 'n_bracketed': ok}
  return Result(optima, float(a), float(b), float(np.exp(log_kn)), float(np.exp(log_kd)),
                a_s, b_s, settings, warn, profs)
