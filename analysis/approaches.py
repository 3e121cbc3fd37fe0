"""Chinchilla's Approaches 1 and 2: compute-optimal N and D read off runs without a parametric L.

Approach 1: the lower envelope of all training curves gives the best loss at each compute C and
the size that reaches it, N_opt(C). Approach 2: points at (nearly) one budget form an IsoFLOP
profile; a parabola in log N locates its minimum. Both end in power laws N_opt ∝ C^a, D_opt ∝ C^b.
"""

import dataclasses
from typing import Callable

import numpy as np
import pandas as pd

from analysis import errors


@dataclasses.dataclass
class PowerLaw:
  """y = k · x^exponent, fitted by least squares in log-log space."""
  k: float
  exponent: float


def fit_power_law(x, y) -> PowerLaw:
  slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
  return PowerLaw(k=float(np.exp(intercept)), exponent=float(slope))


def envelope(curves: pd.DataFrame, n_grid: int = 200) -> pd.DataFrame:
  """Best loss at each C over all runs (curves: run, N, C, D, loss), interpolated in log C."""
  logc = np.log(curves['C'].to_numpy())
  grid_G = np.linspace(logc.min(), logc.max(), n_grid)
  loss_RxG, n_R, d_RxG = [], [], []
  for _, run in curves.sort_values('C').groupby('run', sort=False):
    lc = np.log(run['C'].to_numpy())
    inside = (grid_G >= lc.min()) & (grid_G <= lc.max())
    loss_RxG.append(np.where(inside, np.interp(grid_G, lc, run['loss'].to_numpy()), np.inf))
    d_RxG.append(np.exp(np.interp(grid_G, lc, np.log(run['D'].to_numpy()))))
    n_R.append(run['N'].iloc[0])
  loss_RxG, d_RxG = np.array(loss_RxG), np.array(d_RxG)
  best_G = np.argmin(loss_RxG, axis=0)
  cols = np.arange(n_grid)
  return pd.DataFrame({'C': np.exp(grid_G), 'loss': loss_RxG[best_G, cols],
                       'N': np.array(n_R)[best_G], 'D': d_RxG[best_G, cols]})


@dataclasses.dataclass
class Optima:
  table: pd.DataFrame  # per C (Approach 1) or per budget (Approach 2): C, N, D, loss at the optimum
  n_opt: PowerLaw
  d_opt: PowerLaw


def approach1(curves: pd.DataFrame, n_grid: int = 200) -> Optima:
  """Power laws through the envelope where its best run is neither the smallest nor the largest
  size: there the frontier is set by the sizes trained, not by the optimum."""
  env = envelope(curves, n_grid)
  inner = env[(env['N'] > curves['N'].min()) & (env['N'] < curves['N'].max())]
  if inner['N'].nunique() < 2:
    raise errors.InputError('the envelope of the training curves has fewer than 2 inner sizes: '
                            'Approach 1 needs runs of at least 4 sizes whose curves overlap in C')
  return Optima(env, fit_power_law(inner['C'], inner['N']), fit_power_law(inner['C'], inner['D']))


def budgets(C, rtol: float = 0.05) -> np.ndarray:
  """Group labels: sorted budgets join a group while within rtol of the previous one."""
  C = np.asarray(C, float)
  order = np.argsort(C)
  jumps = np.diff(np.log(C[order])) > np.log1p(rtol)
  labels = np.empty(len(C), int)
  labels[order] = np.concatenate([[0], np.cumsum(jumps)])
  return labels


def parabola(logn_P, loss_P, weight_RxP=None) -> np.ndarray:
  """Least-squares [c2, c1, c0] of loss ~ c2 u² + c1 u + c0 in u = log N, per weight row;
  NaN for rows that weight fewer than 3 distinct sizes."""
  u_P = np.asarray(logn_P, float)
  X_PxT = np.stack([u_P**2, u_P, np.ones_like(u_P)], 1)
  w_RxP = np.ones((1, len(u_P))) if weight_RxP is None else weight_RxP
  sizes_PxV = np.unique(u_P, return_inverse=True)[1][:, None] == np.arange(len(np.unique(u_P)))
  enough_R = ((w_RxP @ sizes_PxV) > 0).sum(1) >= 3
  XtX_RxTxT = np.einsum('rp,pi,pj->rij', w_RxP, X_PxT, X_PxT)
  Xty_RxT = np.einsum('rp,pi,p->ri', w_RxP, X_PxT, np.asarray(loss_P, float))
  XtX_RxTxT[~enough_R] = np.eye(3)
  c_RxT = np.linalg.solve(XtX_RxTxT, Xty_RxT[..., None])[..., 0]
  c_RxT[~enough_R] = np.nan
  return c_RxT


def vertex(c_RxT: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(log N, loss) at each parabola's minimum; NaN where it opens downwards."""
  with np.errstate(all='ignore'):
    u = -c_RxT[:, 1] / (2 * c_RxT[:, 0])
  loss = c_RxT[:, 0] * u**2 + c_RxT[:, 1] * u + c_RxT[:, 2]
  return np.where(c_RxT[:, 0] > 0, u, np.nan), loss


def _profiles(table: pd.DataFrame, rtol: float, min_points: int):
  """(label, budget C, log N, loss) of each IsoFLOP group with >= min_points distinct sizes."""
  for label, g in table.groupby(budgets(table['C'], rtol)):
    if g['N'].nunique() >= min_points:
      C = float(np.exp(np.log(g['C']).mean()))
      yield label, C, np.log(g['N'].to_numpy()), g['loss'].to_numpy()


def _slope_R(logx_G, logy_RxG) -> np.ndarray:
  """Least-squares slope of each row against logx, skipping its NaN entries."""
  m_RxG = np.isfinite(logy_RxG)
  y_RxG = np.where(m_RxG, logy_RxG, 0.0)
  with np.errstate(all='ignore'):
    mean_x_R = (m_RxG * logx_G).sum(1) / m_RxG.sum(1)
    mean_y_R = y_RxG.sum(1) / m_RxG.sum(1)
    dx_RxG = np.where(m_RxG, logx_G - mean_x_R[:, None], 0.0)
    return (dx_RxG * (y_RxG - mean_y_R[:, None])).sum(1) / (dx_RxG**2).sum(1)


def approach2(table: pd.DataFrame, rtol: float = 0.05, min_points: int = 4,
              flops_per_token: Callable | None = None) -> Optima:
  """IsoFLOP optima per budget (>= min_points sizes and an upward parabola), then power laws."""
  f = flops_per_token or (lambda N: 6 * N)
  rows = []
  for label, C, logn, loss in _profiles(table, rtol, min_points):
    c = parabola(logn, loss)
    u, best = vertex(c)
    if np.isfinite(u[0]):
      N = float(np.exp(u[0]))
      rows.append({'budget': label, 'C': C, 'N': N, 'D': C / f(N), 'loss': best[0],
                   'n_points': len(loss), 'c2': c[0, 0], 'c1': c[0, 1], 'c0': c[0, 2]})
  if len(rows) < 2:
    raise errors.InputError(f'only {len(rows)} IsoFLOP budgets with >= {min_points} model sizes '
                            'and a minimum: Approach 2 needs 2; add runs at shared budgets')
  opt = pd.DataFrame(rows)
  return Optima(opt, fit_power_law(opt['C'], opt['N']), fit_power_law(opt['C'], opt['D']))


def approach2_bootstrap(table: pd.DataFrame, n_resamples: int, seed: int, rtol: float = 0.05,
                        min_points: int = 4, flops_per_token: Callable | None = None) -> dict:
  """Exponents a, b refitted on point resamples drawn within each budget (NaN: no minimum)."""
  f = flops_per_token or (lambda N: 6 * N)
  rng = np.random.default_rng(seed)
  logc_G, logn_GxR = [], []
  for _, C, logn, loss in _profiles(table, rtol, min_points):
    w_RxP = rng.multinomial(len(loss), np.full(len(loss), 1 / len(loss)), size=n_resamples)
    logc_G.append(np.log(C))
    logn_GxR.append(vertex(parabola(logn, loss, w_RxP.astype(float)))[0])
  logc_G, logn_RxG = np.array(logc_G), np.array(logn_GxR).T
  logd_RxG = logc_G - np.log(f(np.exp(logn_RxG)))
  return {'a': _slope_R(logc_G, logn_RxG), 'b': _slope_R(logc_G, logd_RxG)}
