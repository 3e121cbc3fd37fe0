"""The one fitting engine: grid-started batched L-BFGS on the Huber objective, and the bootstrap.

Every law fits here (analysis.laws names its parameters, rows and grid). The grid fit follows the
Chinchilla replication protocol (data/chinchilla/README.md): every start runs L-BFGS with scipy's
default stopping rules and the best converged end point is kept. That end point and every
bootstrap resample are then run to a strict stopping rule (no relative-decrease test, gradient
below STRICT_GTOL): the summed Huber objective is ~1e-3 at the optimum, so scipy's
relative-decrease test (floored at 1) stops resamples next to their warm start and would shrink
the bootstrap spread by an order of magnitude.

A fit is `converged` only when its start met a stopping rule, its end point is finite and the
largest |gradient| there is below lbfgs.GTOL: a fit that stopped on a failed line search or the
iteration cap, or ran off to infinity, is never reported as converged.

The bootstrap resamples points, or clusters of points that are not independent (the cooldown
branches of one WSD trunk share the trunk's training; duplicated rows are one measurement), as
multinomial counts. Most resamples are warm-started at the full-data fit; a share of them also
start cold from the whole grid, so that an objective with several basins shows up in the
intervals instead of being hidden by the warm start. `Held` fits some coordinates of a row with
the others held at given values (a law's part taken from another fit, a constant by convention).
"""

import dataclasses

import numpy as np
import pandas as pd

from analysis import errors
from analysis import intervals
from analysis import lbfgs
from analysis import laws
from analysis import objective

STRICT_GTOL = 1e-7


def problem(law: laws.Law, table: pd.DataFrame, **kw) -> objective.Problem:
  """The log-space Huber problem of a law on one table of points (its `loss` column)."""
  logy_P = np.log(np.asarray(table['loss'], float))
  return objective.Problem(law.residuals(table), logy_P[None], np.ones((1, logy_P.size)), **kw)


@dataclasses.dataclass(frozen=True)
class Held:
  """A problem on the free coordinates of a row; the others stay at x_Q's values."""
  problem: objective.Problem
  free_Q: np.ndarray  # bool
  x_Q: np.ndarray

  def full(self, z_nxF: np.ndarray) -> np.ndarray:
    x_nxQ = np.repeat(np.asarray(self.x_Q, float)[None], len(z_nxF), 0)
    x_nxQ[:, self.free_Q] = z_nxF
    return x_nxQ

  def __call__(self, z_nxF: np.ndarray, rows_n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f_n, g_nxQ = self.problem(self.full(z_nxF), rows_n)
    return f_n, g_nxQ[:, self.free_Q]

  def reweighted(self, weight_WxP: np.ndarray) -> 'Held':
    return dataclasses.replace(self, problem=self.problem.reweighted(weight_WxP))


@dataclasses.dataclass
class Fit:
  x: np.ndarray  # Q, the best row
  objective: float  # the problem's objective at x (summed Huber unless the problem averages)
  converged: bool


def refit(prob: lbfgs.Objective, x0_BxQ: np.ndarray) -> lbfgs.Result:
  """Strict L-BFGS from given starts, one per batch row of `prob`."""
  return lbfgs.minimize(prob, x0_BxQ, ftol=0.0, gtol=STRICT_GTOL)


def fit(prob: lbfgs.Objective, starts_SxQ: np.ndarray, polish: bool = True) -> Fit:
  """Best of L-BFGS runs (scipy's default stopping rules) from every start; then polished."""
  res = lbfgs.minimize(prob, starts_SxQ)
  ok = res.converged & np.isfinite(res.f)
  pool = np.flatnonzero(ok) if ok.any() else np.flatnonzero(np.isfinite(res.f))
  if not pool.size:
    raise errors.InputError('no start reached a finite objective: check that the losses and '
                            'sizes are on the scales the law expects')
  best = pool[np.argmin(res.f[pool])]
  x, f, converged = res.x[best], res.f[best], bool(ok[best])
  if polish:
    pol = refit(prob, x[None])
    if pol.f[0] <= f:
      x, f = pol.x[0], pol.f[0]
  return Fit(x=x, objective=float(f), converged=converged and stationary(prob, x))


def stationary(prob: lbfgs.Objective, x_Q: np.ndarray) -> bool:
  """A finite point whose largest |gradient| is below L-BFGS's default tolerance."""
  f, g = prob(np.asarray(x_Q, float)[None], np.zeros(1, int))
  return bool(np.isfinite(x_Q).all() and np.isfinite(f[0]) and np.abs(g).max() <= lbfgs.GTOL)


def multinomial_weights(n_points: int, n_resamples: int, seed: int) -> np.ndarray:
  """Bootstrap resamples as point counts (R×P): resampling with replacement, as weights."""
  rng = np.random.default_rng(seed)
  return rng.multinomial(n_points, np.full(n_points, 1 / n_points), size=n_resamples).astype(float)


def cluster_weights(clusters_P, n_resamples: int, seed: int) -> np.ndarray:
  """Resamples of whole clusters (R×P point counts): every point of a drawn cluster counts once
  per draw. With one point per cluster, in order, this equals multinomial_weights."""
  labels, inverse = np.unique(np.asarray(clusters_P).astype(str), return_inverse=True)
  if len(labels) == len(inverse) and (inverse == np.arange(len(inverse))).all():
    return multinomial_weights(len(inverse), n_resamples, seed)
  counts_RxG = multinomial_weights(len(labels), n_resamples, seed)
  return counts_RxG[:, inverse]


def replication_weights(n_points: int, n_resamples: int, seed: int = 42) -> np.ndarray:
  """The resamples of Besiroglu et al. 2024: legacy numpy seed, one `choice` call per resample."""
  rs = np.random.RandomState(seed)
  idx_RxP = np.stack([rs.choice(n_points, size=n_points, replace=True) for _ in range(n_resamples)])
  return np.stack([np.bincount(i, minlength=n_points) for i in idx_RxP]).astype(float)


def bootstrap(prob, x_Q: np.ndarray, weights_RxP: np.ndarray) -> lbfgs.Result:
  """Refit every resample, warm-started at the full-data fit (all resamples in one batch)."""
  return refit(prob.reweighted(weights_RxP), np.repeat(x_Q[None], len(weights_RxP), 0))


@dataclasses.dataclass
class Bootstrap:
  x_RxQ: np.ndarray  # every resample's end point (the better of warm and cold where both ran)
  converged_R: np.ndarray
  cold_R: np.ndarray  # True where the resample was also started cold from the grid
  other_basin_R: np.ndarray  # True where that cold start ended in another, lower basin

  def summary(self) -> dict:
    """fit.json's bookkeeping: how many converged, and what the cold starts found."""
    n_cold = int(self.cold_R.sum())
    return {'resamples': len(self.converged_R), 'converged': int(self.converged_R.sum()),
            'cold_starts': n_cold,
            'cold_other_basin_share': float(self.other_basin_R.sum() / n_cold) if n_cold else None}


def bootstrap_with_cold_starts(prob, x_Q: np.ndarray, weights_RxP: np.ndarray,
                               starts_SxQ: np.ndarray, cold_share: float = 0.1,
                               seed: int = 0, basin_tol: float = 1e-2) -> Bootstrap:
  """`bootstrap`, plus round(cold_share·R) resamples (at least one when the share is > 0) refitted
  from every start of the grid, as the full-data fit was. A cold end point replaces the warm one
  when its objective is lower; it is in another basin when it also lies more than basin_tol from
  the warm end point in some coordinate of the row."""
  R = len(weights_RxP)
  warm = bootstrap(prob, x_Q, weights_RxP)
  x, converged = warm.x.copy(), warm.converged & np.isfinite(warm.f)
  n_cold = min(R, max(int(round(cold_share * R)), int(cold_share > 0)))
  cold = np.zeros(R, bool)
  cold[np.random.default_rng(seed).choice(R, n_cold, replace=False)] = True
  other = np.zeros(R, bool)
  for r in np.flatnonzero(cold):
    end = fit(prob.reweighted(weights_RxP[r:r + 1]), starts_SxQ)
    if end.converged and (not converged[r] or end.objective < warm.f[r]):
      other[r] = np.abs(end.x - warm.x[r]).max() > basin_tol
      x[r], converged[r] = end.x, True
  return Bootstrap(x_RxQ=x, converged_R=converged, cold_R=cold, other_basin_R=other)


@dataclasses.dataclass
class LawFit:
  """A law fitted to a table: the best row, and the bootstrap around it when one ran."""
  law: laws.Law
  best: Fit
  boot: Bootstrap | None = None

  @property
  def params(self) -> dict[str, float]:
    return {k: float(v) for k, v in self.law.named(self.best.x).items()}

  @property
  def samples(self) -> dict[str, np.ndarray] | None:
    """Named parameters of the converged resamples; None when too few converged for intervals."""
    if self.boot is None or not intervals.enough(self.boot.converged_R.sum()):
      return None
    return self.law.named(self.boot.x_RxQ[self.boot.converged_R])


def fit_law(law: laws.Law, table: pd.DataFrame, weights_RxP: np.ndarray | None = None, *,
            cold_share: float = 0.0, seed: int = 0) -> LawFit:
  """The grid fit of a law to a table, then its bootstrap over the given resamples."""
  prob, starts = problem(law, table), law.starts()
  best = fit(prob, starts)
  boot = None
  if weights_RxP is not None and len(weights_RxP):
    boot = bootstrap_with_cold_starts(prob, best.x, weights_RxP, starts, cold_share, seed)
  return LawFit(law, best, boot)
