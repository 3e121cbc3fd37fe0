"""Grid-started L-BFGS fits of a law to points, and the bootstrap around the best fit.

The grid fit follows the Chinchilla replication protocol (data/chinchilla/README.md): every start
runs L-BFGS with scipy's default stopping rules and the best converged end point is kept. That end
point and every bootstrap resample are then run to a strict stopping rule (no relative-decrease
test, gradient below STRICT_GTOL): the summed Huber objective is ~1e-3 at the optimum, so scipy's
relative-decrease test (floored at 1) stops resamples next to their warm start and would shrink
the bootstrap spread by an order of magnitude.
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
  return Fit(x=x, objective=float(f), converged=converged)


def multinomial_weights(n_points: int, n_resamples: int, seed: int) -> np.ndarray:
  """Bootstrap resamples as point counts (R×P): resampling with replacement, as weights."""
  rng = np.random.default_rng(seed)
  return rng.multinomial(n_points, np.full(n_points, 1 / n_points), size=n_resamples).astype(float)


def replication_weights(n_points: int, n_resamples: int, seed: int = 42) -> np.ndarray:
  """The resamples of Besiroglu et al. 2024: legacy numpy seed, one `choice` call per resample."""
  rs = np.random.RandomState(seed)
  idx_RxP = np.stack([rs.choice(n_points, size=n_points, replace=True) for _ in range(n_resamples)])
  return np.stack([np.bincount(i, minlength=n_points) for i in idx_RxP]).astype(float)


def bootstrap(prob: objective.Problem, x_Q: np.ndarray, weights_RxP: np.ndarray) -> lbfgs.Result:
  """Refit every resample, warm-started at the full-data fit (all resamples in one batch)."""
  boot = dataclasses.replace(prob, weight_WxP=weights_RxP)
  return refit(boot, np.repeat(x_Q[None], len(weights_RxP), 0))


def summarize(samples: dict[str, np.ndarray]) -> tuple[dict, dict]:
  """Bootstrap standard error and 95% percentile interval of each named quantity."""
  stderr = {k: float(np.std(v, ddof=1)) for k, v in samples.items()}
  ci95 = {k: [float(q) for q in np.percentile(v, [2.5, 97.5])] for k, v in samples.items()}
  return stderr, ci95
