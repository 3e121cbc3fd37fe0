"""Grid-started L-BFGS fits of a law to points, and the bootstrap around the best fit.

The grid fit follows the Chinchilla replication protocol (data/chinchilla/README.md): every start
runs L-BFGS with scipy's default stopping rules and the best converged end point is kept. That end
point and every bootstrap resample are then run to a strict stopping rule (no relative-decrease
test, gradient below STRICT_GTOL): the summed Huber objective is ~1e-3 at the optimum, so scipy's
relative-decrease test (floored at 1) stops resamples next to their warm start and would shrink
the bootstrap spread by an order of magnitude.

A fit is `converged` only when its start met a stopping rule, its end point is finite and the
largest |gradient| there is below lbfgs.GTOL: a fit that stopped on a failed line search or the
iteration cap, or ran off to infinity, is never reported as converged.

The bootstrap resamples points, or clusters of points that are not independent (the cooldown
branches of one WSD trunk share the trunk's training), as multinomial counts. Most resamples are
warm-started at the full-data fit; a share of them also start cold from the whole grid, so that an
objective with several basins shows up in the intervals instead of being hidden by the warm start.
"""

import dataclasses
import itertools

import numpy as np

from analysis import errors
from analysis import lbfgs
from analysis import laws
from analysis import objective

GRID_C = np.arange(0, 30, 5.0)  # a, b (log A, log B)
GRID_E = np.arange(-1, 1.5, 0.5)  # e = log E
GRID_ALPHA = np.arange(0, 2.5, 0.5)  # alpha, beta
STRICT_GTOL = 1e-7


def grid_starts(law: laws.Law) -> np.ndarray:
  """The product grid in row layout; 4,500 starts for Chinchilla's law."""
  K = len(law.variables)
  axes = [GRID_C] * K + [GRID_E] * int(law.constant) + [GRID_ALPHA] * K
  return np.array(list(itertools.product(*axes)))


def problem(law: laws.Law, table: dict[str, np.ndarray], loss: np.ndarray,
            **kw) -> objective.Problem:
  """The log-space Huber problem for one table of points (columns named as law.variables)."""
  logx_KxP = np.stack([np.log(np.asarray(table[v], float)) for v in law.variables])
  logy_P = np.log(np.asarray(loss, float))
  return objective.Problem(logx_KxP, logy_P[None], np.ones((1, logy_P.size)), constant=law.constant,
                           **kw)


@dataclasses.dataclass
class Fit:
  x: np.ndarray  # Q, the best row
  objective: float  # the problem's objective at x (summed Huber unless the problem averages)
  converged: bool


def refit(prob: objective.Problem, x0_BxQ: np.ndarray) -> lbfgs.Result:
  """Strict L-BFGS from given starts, one per batch row of `prob`."""
  return lbfgs.minimize(prob, x0_BxQ, ftol=0.0, gtol=STRICT_GTOL)


def fit(prob: objective.Problem, starts_SxQ: np.ndarray, polish: bool = True) -> Fit:
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


def stationary(prob: objective.Problem, x_Q: np.ndarray) -> bool:
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


def bootstrap(prob: objective.Problem, x_Q: np.ndarray, weights_RxP: np.ndarray) -> lbfgs.Result:
  """Refit every resample, warm-started at the full-data fit (all resamples in one batch)."""
  boot = dataclasses.replace(prob, weight_WxP=weights_RxP)
  return refit(boot, np.repeat(x_Q[None], len(weights_RxP), 0))


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


def bootstrap_with_cold_starts(prob: objective.Problem, x_Q: np.ndarray, weights_RxP: np.ndarray,
                               starts_SxQ: np.ndarray, cold_share: float = 0.1,
                               seed: int = 0, basin_tol: float = 1e-2) -> Bootstrap:
  """`bootstrap`, plus round(cold_share·R) resamples (at least one when the share is > 0) refitted
  from every start of the grid, as the full-data fit was. A cold end point replaces the warm one
  when its objective is lower; it is in another basin when it also lies more than basin_tol from
  the warm end point in some parameter (the row layout: log coefficients and exponents)."""
  R = len(weights_RxP)
  warm = bootstrap(prob, x_Q, weights_RxP)
  x, converged = warm.x.copy(), warm.converged & np.isfinite(warm.f)
  n_cold = min(R, max(int(round(cold_share * R)), int(cold_share > 0)))
  cold = np.zeros(R, bool)
  cold[np.random.default_rng(seed).choice(R, n_cold, replace=False)] = True
  other = np.zeros(R, bool)
  for r in np.flatnonzero(cold):
    end = fit(dataclasses.replace(prob, weight_WxP=weights_RxP[r:r + 1]), starts_SxQ)
    if end.converged and (not converged[r] or end.objective < warm.f[r]):
      other[r] = np.abs(end.x - warm.x[r]).max() > basin_tol
      x[r], converged[r] = end.x, True
  return Bootstrap(x_RxQ=x, converged_R=converged, cold_R=cold, other_basin_R=other)


def summarize(samples: dict[str, np.ndarray]) -> tuple[dict, dict]:
  """Bootstrap standard error and 95% percentile interval of each named quantity."""
  stderr = {k: float(np.std(v, ddof=1)) for k, v in samples.items()}
  ci95 = {k: [float(q) for q in np.percentile(v, [2.5, 97.5])] for k, v in samples.items()}
  return stderr, ci95
