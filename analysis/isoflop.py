"""IsoFLOP profiles: the budgets of a table, and the estimators of one profile's minimum.

Approach 2 (analysis/approach2.py) runs them on every budget and fits power laws across budgets.

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
- `akima` (the default): Porian et al.'s estimator: Akima interpolation of log loss against u,
  minimised on a grid of step GRID_STEP in u. It follows the profile's asymmetry but passes
  through every point, so it inherits each point's noise.

A budget is bracketed when its best observed size has a smaller and a larger size beside it and
the estimated minimum lies strictly between the smallest and largest sizes. Unbracketed budgets
are not optima: they are reported, named in a warning and left out of the power laws.
"""

import dataclasses

import numpy as np
import pandas as pd
from scipy import cluster
from scipy import interpolate

from analysis import errors

ESTIMATORS = ('akima', 'parabola')  # the first is the default: it reproduces Porian et al.
WINDOW = 2
GRID_STEP = 1e-3  # in log N: 0.1% in N
MIN_SIZES = 3
RTOL = 0.05


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


def loss_at(p: Profile, u_star: float, estimator: str) -> float:
  if not np.isfinite(u_star):
    return np.nan
  if estimator == 'akima':
    return float(np.exp(interpolate.Akima1DInterpolator(p.logn, np.log(p.loss))(u_star)))
  return float(np.polyval(_parabola(p.logn, p.loss, int(np.argmin(p.loss)))[1], u_star))


def akima_minima(u: np.ndarray, loss_SxR: np.ndarray) -> np.ndarray:
  """Akima minimum of every column at once (one set of sizes), NaN where unbracketed."""
  grid = _grid(u)
  curve_GxR = interpolate.Akima1DInterpolator(u, np.log(loss_SxR), axis=0)(grid)
  u_star = grid[np.argmin(curve_GxR, 0)]
  best = np.argmin(loss_SxR, 0)
  inside = (best > 0) & (best < len(u) - 1) & (u_star > u[0]) & (u_star < u[-1])
  return np.where(inside, u_star, np.nan)
