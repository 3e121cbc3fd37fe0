"""L-BFGS run on a whole batch of problems at once (numpy), so thousands of starts cost one loop.

Each row of `x0_BxK` is an independent problem. Rows step in lockstep, but a row leaves the
batch as soon as it stops, so late stragglers make the arrays small rather than the loop long.
Stopping rules follow scipy's L-BFGS-B defaults (factr=1e7, pgtol=1e-5): a relative decrease
below FTOL, with the denominator floored at 1, or a largest |gradient| below GTOL. Keeping these
rules is what makes an averaged objective stop early, as scipy does (docs/analysis.md).
"""

import dataclasses
from typing import Callable

import numpy as np

FTOL = 1e7 * np.finfo(float).eps
GTOL = 1e-5
# fun(x_nxK, rows_n) -> (f_n, g_nxK); rows says which problems of the batch x belongs to.
Objective = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclasses.dataclass
class Result:
  x: np.ndarray  # BxK
  f: np.ndarray  # B
  converged: np.ndarray  # B, met FTOL or GTOL (False: line search failed or maxiter reached)
  nit: np.ndarray  # B


def _direction(g_nxK, S_nxMxK, Y_nxMxK, rho_nxM) -> np.ndarray:
  """Two-loop recursion; empty (zero) history slots contribute nothing."""
  q = g_nxK.copy()
  mem = rho_nxM.shape[1]
  al_nxM = np.zeros_like(rho_nxM)
  for i in range(mem - 1, -1, -1):
    al_nxM[:, i] = rho_nxM[:, i] * np.einsum('nk,nk->n', S_nxMxK[:, i], q)
    q -= al_nxM[:, i, None] * Y_nxMxK[:, i]
  sy = np.einsum('nk,nk->n', S_nxMxK[:, -1], Y_nxMxK[:, -1])
  yy = np.einsum('nk,nk->n', Y_nxMxK[:, -1], Y_nxMxK[:, -1])
  fresh = rho_nxM[:, -1] == 0  # no curvature pair yet: a unit-length steepest-descent step
  gamma = np.where(fresh, 1 / np.maximum(np.linalg.norm(g_nxK, axis=1), 1e-300),
                   sy / np.where(fresh, 1, yy))
  r = gamma[:, None] * q
  for i in range(mem):
    b = rho_nxM[:, i] * np.einsum('nk,nk->n', Y_nxMxK[:, i], r)
    r += S_nxMxK[:, i] * (al_nxM[:, i] - b)[:, None]
  return -r


def _line_search(fun: Objective, x, f, g, d, rows, max_ls: int, c1: float = 1e-4):
  """Backtracking (Armijo) with safeguarded quadratic interpolation; only failing rows re-run."""
  n = len(rows)
  gd = np.einsum('nk,nk->n', g, d)
  t = np.ones(n)
  x_new, f_new, g_new = x.copy(), f.copy(), g.copy()
  ok = np.zeros(n, bool)
  todo = np.arange(n)
  for _ in range(max_ls):
    xt = x[todo] + t[todo, None] * d[todo]
    ft, gt = fun(xt, rows[todo])
    acc = ft <= f[todo] + c1 * t[todo] * gd[todo]  # NaN and inf fail
    i = todo[acc]
    x_new[i], f_new[i], g_new[i], ok[i] = xt[acc], ft[acc], gt[acc], True
    todo, ft = todo[~acc], ft[~acc]
    if not todo.size:
      break
    tt, step_gd = t[todo], gd[todo] * t[todo]
    with np.errstate(all='ignore'):
      tq = -step_gd * tt / (2 * (ft - f[todo] - step_gd))
    t[todo] = np.clip(np.nan_to_num(tq, nan=0.5 * tt), 0.1 * tt, 0.5 * tt)
  return x_new, f_new, g_new, ok


def minimize(fun: Objective, x0_BxK: np.ndarray, *, mem: int = 10, ftol: float = FTOL,
             gtol: float = GTOL, maxiter: int = 500, max_ls: int = 30) -> Result:
  x = np.array(x0_BxK, dtype=float)
  B, K = x.shape
  f, g = fun(x, np.arange(B))
  S, Y, rho = np.zeros((B, mem, K)), np.zeros((B, mem, K)), np.zeros((B, mem))
  nit = np.zeros(B, int)
  converged = np.isfinite(f) & (np.abs(g).max(1) <= gtol)
  live = np.flatnonzero(np.isfinite(f) & ~converged)
  while live.size:
    d = _direction(g[live], S[live], Y[live], rho[live])
    uphill = ~(np.einsum('nk,nk->n', d, g[live]) < 0)
    d[uphill] = -g[live][uphill]
    rho[live[uphill]] = 0  # drop a history that no longer gives descent
    x_new, f_new, g_new, ok = _line_search(fun, x[live], f[live], g[live], d, live, max_ls)
    s, y = x_new - x[live], g_new - g[live]
    sy, yy = np.einsum('nk,nk->n', s, y), np.einsum('nk,nk->n', y, y)
    keep = ok & (sy > np.finfo(float).eps * yy) & (yy > 0)
    upd = live[keep]
    S[upd], Y[upd] = np.roll(S[upd], -1, 1), np.roll(Y[upd], -1, 1)
    rho[upd] = np.roll(rho[upd], -1, 1)
    S[upd, -1], Y[upd, -1], rho[upd, -1] = s[keep], y[keep], 1 / sy[keep]
    rel = (f[live] - f_new) / np.maximum(np.maximum(np.abs(f[live]), np.abs(f_new)), 1)
    x[live], f[live], g[live] = x_new, f_new, g_new
    nit[live] += 1
    stop = ok & ((rel <= ftol) | (np.abs(g_new).max(1) <= gtol))
    converged[live] = stop
    live = live[ok & ~stop & (nit[live] < maxiter)]
  return Result(x=x, f=f, converged=converged, nit=nit)
