"""Chinchilla's Approach 2: the optimum of each IsoFLOP budget, and power laws across budgets.

Budgets. A point's budget is the one its run was launched at (`budget` column, or run.json's
`budget`). Tables without one for every point are grouped by complete linkage of log C: no two
points of a group are more than `rtol` apart in C (single linkage let a chain of near neighbours
span 28% of C on the Chinchilla data). A budget's C is the geometric mean of its points' C, so
the power law is in the table's own FLOP convention whatever the sweep's was.

Estimators of one budget's optimum, in u = log N (points of one size are averaged first):
- `parabola`: a least-squares parabola in u through the best observed size and its WINDOW
  nearest sizes on each side. A parabola is the second-order expansion of the profile at its
  minimum, so only points near the minimum obey it: at a fixed budget the largest models are read
  early in training, several nats above the best loss, and one parabola through every point is
  pulled far from the minimum by them. A window counted in sizes, not in a loss band, needs no
  loss scale (nats or bits) and always keeps 2·WINDOW + 1 points when the minimum is bracketed.
- `akima`: Porian et al.'s estimator: Akima interpolation of log loss against u, minimised on a
  grid of step GRID_STEP in u. It follows the profile's asymmetry but passes through every point,
  so it inherits each point's noise.

A budget is bracketed when its best observed size has a smaller and a larger size beside it and
the estimated minimum lies strictly between the smallest and largest sizes. Unbracketed budgets
are not optima: they are reported, named in a warning and left out of the power laws.

Power laws. log N_opt = log k + a log C by weighted least squares, each budget weighted by the
precision 1/σ² of its log N_opt, σ the bootstrap standard deviation (Porian et al.'s weighting),
floored at a third of the budget's mean log spacing of sizes so that no budget claims a precision
its sizes cannot resolve (their floor too). D_opt is read off each budget's points by
interpolating log D against log N at N_opt, so b needs no FLOP convention. Intervals for a and b
are percentiles of the same fit over bootstrap resamples, each budget resampled independently:
either its points drawn with replacement (`points`, the default) or Gaussian noise of a stated
size added to every loss (`noise`, Porian et al.'s model of seed noise).
"""

import dataclasses

import numpy as np
import pandas as pd
from scipy import cluster
from scipy import interpolate

from analysis import errors

ESTIMATORS = ('parabola', 'akima')
WINDOW = 2
GRID_STEP = 1e-3  # in log N: 0.1% in N
MIN_SIZES = 3
RTOL = 0.05
N_RESAMPLES = 200
UNSTABLE = 0.5  # left out: a budget unbracketed in more than this share of its resamples


def budget_labels(C, rtol: float = RTOL) -> np.ndarray:
  """Group labels 0, 1, ... in increasing C: complete linkage of log C at distance log(1 + rtol)."""
  logc = np.log(np.asarray(C, float))
  if len(logc) < 2:
    return np.zeros(len(logc), int)
  raw = cluster.hierarchy.fcluster(cluster.hierarchy.linkage(logc[:, None], 'complete'),
                                   t=np.log1p(rtol), criterion='distance')
  order = pd.Series(logc).groupby(raw).min().sort_values().index
  return pd.Series(raw).map({g: i for i, g in enumerate(order)}).to_numpy()


@dataclasses.dataclass
class Profile:
  """One budget: its C and its distinct sizes (sorted) with mean loss and log D at each."""
  C: float
  logn: np.ndarray
  loss: np.ndarray
  logd: np.ndarray
  points: pd.DataFrame  # the budget's rows, which the bootstrap resamples


def _profile(C: float, g: pd.DataFrame) -> Profile:
  u, size_P = np.unique(np.log(g['N'].to_numpy()), return_inverse=True)
  count = np.bincount(size_P)
  mean = [np.bincount(size_P, weights=g[k].to_numpy()) / count for k in ('loss', 'D')]
  return Profile(C, u, mean[0], np.log(mean[1]), g)


def profiles(table: pd.DataFrame, rtol: float = RTOL,
             strict: bool = True) -> tuple[list[Profile], str, list[str]]:
  """Budgets with >= MIN_SIZES sizes, how they were grouped, and notes on the ones left out.

  With strict, budgets named by a `budget` column must all have MIN_SIZES sizes (else
  InputError); groups inferred from C that are too small are only noted: they may be stray
  points, as are small named budgets without strict (a sweep still running)."""
  recorded = table['budget'].notna() if 'budget' in table else pd.Series(False, table.index)
  named = bool(recorded.all())
  if named:
    keys, grouping = table['budget'].to_numpy(float), 'the budget recorded for each point'
  else:
    keys = budget_labels(table['C'], rtol)
    grouping = f'complete linkage of C within {rtol:.0%} (' + (
        f'{int((~recorded).sum())} of {len(table)} points have no budget recorded)'
        if recorded.any() else 'no budget recorded)')
  out, notes = [], []
  for key, g in table.groupby(keys):
    C = float(np.exp(np.log(g['C']).mean()))  # in the table's FLOP convention, as the fit's C
    sizes = g['N'].nunique()
    if sizes >= MIN_SIZES:
      out.append(_profile(C, g))
    elif named and strict:
      raise errors.InputError(
          f'budget {float(key):.4g} has {sizes} distinct size{"s" * (sizes != 1)} (N = '
          f'{", ".join(f"{n:.3g}" for n in sorted(g["N"].unique()))}); an IsoFLOP minimum needs '
          f'at least {MIN_SIZES}: add runs at this budget or drop its rows')
    else:
      notes.append(f'C ~ {C:.3g} ({sizes} size{"s" * (sizes != 1)})')
  return out, grouping, notes


def _parabola(u: np.ndarray, loss: np.ndarray, best: int) -> tuple[float, np.ndarray]:
  """Vertex and np.polyval coefficients of the least-squares parabola through the window."""
  lo, hi = max(best - WINDOW, 0), min(best + WINDOW + 1, len(u))
  x = u[lo:hi] - u[best]  # centred, for conditioning
  X = np.stack([x**2, x, np.ones_like(x)], 1)
  c2, c1, c0 = np.linalg.solve(X.T @ X, X.T @ loss[lo:hi])
  u0 = u[best]
  coef = np.array([c2, c1 - 2 * c2 * u0, c2 * u0**2 - c1 * u0 + c0])
  return (u0 - c1 / (2 * c2) if c2 > 0 else np.nan), coef


def _grid(u: np.ndarray) -> np.ndarray:
  return np.linspace(u[0], u[-1], max(int(np.ceil((u[-1] - u[0]) / GRID_STEP)) + 1, 3))


def _akima_curve(u: np.ndarray, loss: np.ndarray):
  grid = _grid(u)
  with np.errstate(over='ignore'):  # sizes a hair apart (digitised data) can make it overshoot
    return grid, np.exp(interpolate.Akima1DInterpolator(u, np.log(loss))(grid))


def minimum(u: np.ndarray, loss: np.ndarray, estimator: str) -> float:
  """log N at the profile's minimum (u sorted, distinct); NaN when it is not bracketed."""
  if len(u) < MIN_SIZES:
    return np.nan
  best = int(np.argmin(loss))
  if best in (0, len(u) - 1):
    return np.nan
  if estimator == 'parabola':
    u_star = _parabola(u, loss, best)[0]
  else:
    grid, curve = _akima_curve(u, loss)
    u_star = grid[np.argmin(curve)]
  return u_star if u[0] < u_star < u[-1] else np.nan


def curve(p: Profile, estimator: str) -> tuple[np.ndarray, np.ndarray]:
  """(N, loss) of the fitted profile, for the IsoFLOP figure."""
  if estimator == 'akima':
    grid, fitted = _akima_curve(p.logn, p.loss)
    return np.exp(grid), fitted
  best = int(np.argmin(p.loss))
  c = _parabola(p.logn, p.loss, best)[1]
  lo, hi = p.logn[max(best - WINDOW, 0)], p.logn[min(best + WINDOW, len(p.logn) - 1)]
  grid = np.linspace(lo, hi, 100)
  return np.exp(grid), np.polyval(c, grid)


def _loss_at(p: Profile, u_star: float, estimator: str) -> float:
  if not np.isfinite(u_star):
    return np.nan
  if estimator == 'akima':
    return float(np.exp(interpolate.Akima1DInterpolator(p.logn, np.log(p.loss))(u_star)))
  return float(np.polyval(_parabola(p.logn, p.loss, int(np.argmin(p.loss)))[1], u_star))


def _akima_minima(u: np.ndarray, loss_SxR: np.ndarray) -> np.ndarray:
  """Akima minimum of every column at once (one set of sizes), NaN where unbracketed."""
  grid = _grid(u)
  curve_GxR = interpolate.Akima1DInterpolator(u, np.log(loss_SxR), axis=0)(grid)
  u_star = grid[np.argmin(curve_GxR, 0)]
  best = np.argmin(loss_SxR, 0)
  inside = (best > 0) & (best < len(u) - 1) & (u_star > u[0]) & (u_star < u[-1])
  return np.where(inside, u_star, np.nan)


def _resampled(p: Profile, estimator: str, n: int, rng, noise: float | None) -> np.ndarray:
  """log N_opt of each resample of one budget's points (NaN where unbracketed)."""
  u_all, loss_all = np.log(p.points['N'].to_numpy()), p.points['loss'].to_numpy()
  size_P = np.searchsorted(p.logn, u_all)  # p.logn holds the distinct sizes, sorted
  onehot_PxS = (size_P[:, None] == np.arange(len(p.logn))).astype(float)
  if noise is not None:  # one set of sizes: every resample at once
    loss_RxP = loss_all + rng.normal(0.0, noise, (n, len(u_all)))
    loss_SxR = (onehot_PxS / onehot_PxS.sum(0)).T @ loss_RxP.T
    if estimator == 'akima':
      return _akima_minima(p.logn, loss_SxR)
    return np.array([minimum(p.logn, loss_SxR[:, r], estimator) for r in range(n)])
  out = np.full(n, np.nan)
  for r in range(n):
    pick = rng.integers(0, len(u_all), len(u_all))
    count_S = np.bincount(size_P[pick], minlength=len(p.logn))
    sum_S = np.bincount(size_P[pick], weights=loss_all[pick], minlength=len(p.logn))
    have = count_S > 0
    out[r] = minimum(p.logn[have], sum_S[have] / count_S[have], estimator)
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
  profiles: list[Profile]  # in the order of optima's rows

  def curve(self, i: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, fitted loss) of budget i, for the IsoFLOP figure."""
    return curve(self.profiles[i], self.settings['estimator'])

  def ci95(self, key: str) -> list[float]:
    s = getattr(self, f'{key}_samples')
    s = s[np.isfinite(s)]
    return [float(v) for v in np.percentile(s, [2.5, 97.5])] if len(s) > 1 else [np.nan] * 2

  def to_json(self) -> dict:
    cols = ['C', 'status', 'n_sizes', 'n_points', 'N', 'D', 'loss', 'log_n_std', 'weight']
    return {**self.settings, 'a': self.a, 'b': self.b, 'a_ci95': self.ci95('a'),
            'b_ci95': self.ci95('b'), 'k_n': self.k_n, 'k_d': self.k_d,
            'budgets': [{k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                         for k, v in row.items()}
                        for row in self.optima[cols].to_dict('records')],
            'warnings': self.warnings}


def approach2(table: pd.DataFrame, estimator: str = 'parabola', n_resamples: int = N_RESAMPLES,
              seed: int = 0, noise: float | None = None, rtol: float = RTOL,
              strict: bool = True) -> Result:
  """Optima of every budget, weighted power laws across the bracketed ones, bootstrap intervals.

  noise: None resamples each budget's points; a number (loss units) adds that Gaussian noise.
  strict: a recorded budget with fewer than MIN_SIZES sizes is an error, else a note."""
  if estimator not in ESTIMATORS:
    raise errors.InputError(f'--isoflop={estimator!r}: use one of {", ".join(ESTIMATORS)}')
  if n_resamples < 2:
    raise errors.InputError(f'IsoFLOP bootstrap needs >= 2 resamples, got {n_resamples}')
  profs, grouping, small = profiles(table, rtol, strict)
  if not profs:
    if 'budget' in table and table['budget'].notna().all():
      raise errors.InputError(f'no recorded budget has >= {MIN_SIZES} sizes ({", ".join(small)}): '
                              'add runs at shared budgets')
    raise errors.InputError(
        'no IsoFLOP budget with >= 3 sizes: the table has no budget column and no 3 sizes share '
        f'a C within {rtol:.0%}; add a budget column or name one with --columns=budget=COL')
  rng = np.random.default_rng(seed)
  rows, logn_BxR, warn = [], [], []
  for p in profs:
    u_star = minimum(p.logn, p.loss, estimator)
    boot = _resampled(p, estimator, n_resamples, rng, noise)
    valid = np.isfinite(boot)
    floor = np.diff(p.logn).mean() / 3
    std = max(float(np.std(boot[valid], ddof=1)) if valid.sum() > 1 else np.nan, floor)
    status = ('unbracketed' if not np.isfinite(u_star) else
              'unstable' if valid.mean() < 1 - UNSTABLE else 'ok')
    N = float(np.exp(u_star)) if np.isfinite(u_star) else np.nan
    D = float(np.exp(np.interp(u_star, p.logn, p.logd))) if np.isfinite(u_star) else np.nan
    rows.append({'C': p.C, 'status': status, 'n_sizes': len(p.logn), 'n_points': len(p.points),
                 'N': N, 'D': D, 'loss': _loss_at(p, u_star, estimator), 'log_n_std': std,
                 'weight': 1 / std**2 if status == 'ok' else 0.0,
                 'N_min': float(np.exp(p.logn[0])), 'N_max': float(np.exp(p.logn[-1]))})
    logn_BxR.append(boot)
  optima = pd.DataFrame(rows)
  if small:
    warn.append(f'left out, fewer than {MIN_SIZES} sizes: {len(small)} group'
                f'{"s" * (len(small) != 1)} of points, {", ".join(small)}')
  for status, why in (('unbracketed', 'its minimum is at or beyond the smallest or largest size '
                                      'trained there'),
                      ('unstable', f'its minimum is unbracketed in over {UNSTABLE:.0%} of the '
                                   'bootstrap resamples')):
    bad = optima[optima['status'] == status]
    if len(bad):
      warn.append(f'left out of the power law, {why}: ' + ', '.join(
          f'C={r.C:.3g} (N {r.N_min:.3g}..{r.N_max:.3g})' for r in bad.itertuples()))
  ok = optima['status'] == 'ok'
  if ok.sum() < 2:
    raise errors.InputError(
        f'only {int(ok.sum())} of {len(optima)} IsoFLOP budgets bracket their minimum; a power '
        'law needs 2: add sizes on the open side of the unbracketed budgets'
        + (f' ({"; ".join(warn)})' if warn else ''))
  logc = np.log(optima['C'].to_numpy()[ok])
  w = optima['weight'].to_numpy()[ok]
  logn = np.log(optima['N'].to_numpy()[ok])[None]
  logd = np.log(optima['D'].to_numpy()[ok])[None]
  a, log_kn = (v[0] for v in _weighted_fit(logc, logn, w))
  b, log_kd = (v[0] for v in _weighted_fit(logc, logd, w))
  boot_n = np.array(logn_BxR)[ok.to_numpy()].T
  profs_ok = [p for p, good in zip(profs, ok) if good]
  boot_d = np.array([np.interp(boot_n[:, i], p.logn, p.logd) for i, p in enumerate(profs_ok)]).T
  boot_d[~np.isfinite(boot_n)] = np.nan
  a_s = _weighted_fit(logc, boot_n, w)[0]
  b_s = _weighted_fit(logc, boot_d, w)[0]
  settings = {
      'estimator': estimator,
      'rule': (f'parabola in log N through the best observed size and its {WINDOW} nearest sizes '
               'on each side' if estimator == 'parabola' else
               f'Akima interpolation of log loss vs log N, argmin on a grid of step {GRID_STEP} '
               'in log N'),
      'grouping': grouping,
      'weighting': ('1/std^2 of each budget\'s bootstrap log N_opt, std floored at 1/3 of the '
                    'budget\'s mean log spacing of sizes'),
      'resampling': ('points drawn with replacement within each budget' if noise is None else
                     f'Gaussian noise of {noise:g} added to every loss (seed-noise model)'),
      'n_resamples': n_resamples, 'seed': seed,
      'n_budgets': len(optima), 'n_bracketed': int(ok.sum()),
  }
  return Result(optima, float(a), float(b), float(np.exp(log_kn)), float(np.exp(log_kd)),
                a_s, b_s, settings, warn, profs)
