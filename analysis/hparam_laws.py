"""The learning-rate and batch-size laws: a power law in several variables, its spec for the
engine, its least-squares fit with per-resample targets, and the published laws it is drawn beside.

y = k · Π_v x_v^(a_v) is the form of every published law here, and of the critical batch across
model sizes (analysis.critical_batch). It is fitted as log y = log k + Σ a_v log x_v by least
squares in log space, as DeepSeek LLM, Step Law and Zhang et al. fit it: the one Huber objective
with δ = ∞ (`LEAST_SQUARES`), grid-started and finished by the engine's batched L-BFGS. The row is
[log k, a_1 … a_V]; the residuals are linear in it (objective.Numeric's central differences are
exact there up to rounding). The variables are centred (`PowerProduct.on`).

Bootstrap resamples here change what each point measures (a cell's optimum redone on resampled
runs), not only how much it counts, so `fit` takes per-resample targets and weights and refits
them all in one batch with the engine's strict L-BFGS (engine.refit), warm-started at the fit.
"""

import dataclasses
import itertools

import numpy as np
import pandas as pd

from analysis import engine
from analysis import lbfgs
from analysis import objective

LEAST_SQUARES = np.inf  # the Huber δ at which the objective is ½ Σ w r²
OBJECTIVE = 'least squares in log space (the Huber objective with delta = inf)'
GRID_LOG_K = (-10.0, 0.0, 10.0)
GRID_EXPONENT = (-1.0, 0.0, 1.0)


def power_product(coefficient, exponents: dict, **x):
  """k · Π_v x_v^(a_v) for exponents {v: a_v}; broadcasts."""
  return coefficient * np.prod([np.asarray(x[v], float)**a for v, a in exponents.items()], axis=0)


@dataclasses.dataclass(frozen=True)
class PowerProduct:
  """y = coefficient · Π_v v^(exponent_v) in `variables` (table columns): the analysis.laws.Law
  protocol, with the parameters `coefficient` and one exponent named after each variable.

  The row is [c, a_1 … a_V] with log y = c + Σ a_v (log x_v − m_v), m_v a fixed centre (`on`
  takes the table's mean log): log k = c − Σ a_v m_v. Centred, the least-squares problem is well
  conditioned, and the strict stopping rule is reached at sizes of 1e4 and 1e12 alike."""
  variables: tuple[str, ...]
  log_centers: tuple[float, ...]
  name: str = 'power_product'

  @classmethod
  def on(cls, table: pd.DataFrame, variables: tuple[str, ...]) -> 'PowerProduct':
    return cls(tuple(variables), tuple(float(np.mean(np.log(table[v].to_numpy(float))))
                                       for v in variables))

  @property
  def params(self) -> tuple[str, ...]:
    return ('coefficient', *self.variables)

  @property
  def n_params(self) -> int:
    return 1 + len(self.variables)

  def named(self, x_Q: np.ndarray) -> dict[str, np.ndarray]:
    x_Q = np.asarray(x_Q, float)
    exps = [x_Q[..., 1 + i] for i in range(len(self.variables))]
    log_k = x_Q[..., 0] - sum(a * m for a, m in zip(exps, self.log_centers))
    return {'coefficient': np.exp(log_k), **dict(zip(self.variables, exps))}

  def row(self, p: dict) -> np.ndarray:
    exps = [p[v] for v in self.variables]
    return np.array([np.log(p['coefficient']) + sum(a * m for a, m in zip(exps, self.log_centers)),
                     *exps])

  def predict(self, p: dict, **x) -> np.ndarray:
    return power_product(p['coefficient'], {v: p[v] for v in self.variables}, **x)

  def residuals(self, table: pd.DataFrame) -> objective.Numeric:
    X_QxP = np.stack([np.ones(len(table)), *(np.log(table[v].to_numpy(float)) - m
                                             for v, m in zip(self.variables, self.log_centers))])
    return objective.Numeric(lambda x_nxQ: x_nxQ @ X_QxP)

  def starts(self) -> np.ndarray:
    return np.array(list(itertools.product(GRID_LOG_K, *[GRID_EXPONENT] * len(self.variables))))


def fit(law: PowerProduct, table: pd.DataFrame, target: str, weight_P=None, target_RxP=None,
        weight_RxP=None) -> engine.LawFit:
  """The law fitted to table[target] (weights weight_P, default 1) by least squares in log space;
  with resamples (target_RxP and/or weight_RxP; a non-finite target weighs 0), their refits."""
  logy_P = np.log(table[target].to_numpy(float))
  w_P = np.ones(len(table)) if weight_P is None else np.asarray(weight_P, float)
  prob = objective.Problem(law.residuals(table), logy_P[None], w_P[None], delta=LEAST_SQUARES)
  best = engine.fit(prob, law.starts())
  if target_RxP is None and weight_RxP is None:
    return engine.LawFit(law, best)
  R = len(target_RxP if target_RxP is not None else weight_RxP)
  logy_RxP = np.tile(logy_P, (R, 1)) if target_RxP is None else np.log(np.asarray(target_RxP,
                                                                                 float))
  w_RxP = np.tile(w_P, (R, 1)) if weight_RxP is None else np.asarray(weight_RxP, float)
  ok_RxP = np.isfinite(logy_RxP) & (w_RxP > 0)
  resampled = objective.Problem(prob.residuals, np.where(ok_RxP, logy_RxP, 0.0),
                                np.where(ok_RxP, w_RxP, 0.0), delta=LEAST_SQUARES)
  boot = refit_resamples(resampled, best.x, R)
  # A resample whose weighted points do not span the variables (an interp resample that lost
  # cells) leaves exponents at their warm start: it identified nothing and does not count.
  X_PxQ = np.stack([np.ones(len(table)), *(np.log(table[v].to_numpy(float))
                                           for v in law.variables)], 1)
  boot.converged_R &= np.array([np.linalg.matrix_rank(X_PxQ[ok]) == X_PxQ.shape[1]
                                for ok in ok_RxP])
  return engine.LawFit(law, best, boot)


def refit_resamples(prob, x_Q: np.ndarray, n_resamples: int) -> engine.Bootstrap:
  """engine.refit of every row of an R-row problem (a Problem or an engine.Held), warm-started at
  x_Q. A resample converged as the engine calls a fit converged: its end point is finite and its
  largest |gradient| is below lbfgs.GTOL (the strict rule's 1e-7 is out of reach on some
  least-squares objectives of order 1, whose line search runs out of float precision there)."""
  refits = engine.refit(prob, np.repeat(np.asarray(x_Q, float)[None], n_resamples, 0))
  _, g_RxQ = prob(refits.x, np.arange(n_resamples))
  converged_R = np.isfinite(refits.f) & np.isfinite(refits.x).all(1) & (
      np.abs(g_RxQ).max(1) <= lbfgs.GTOL)
  none_R = np.zeros(n_resamples, bool)
  return engine.Bootstrap(refits.x, converged_R, none_R, none_R)


# The published laws, as their papers give them, each with the counting it assumes. A law's
# variables are N (parameters), D (tokens) or C (FLOPs); `batch_unit` is what its batch counts.
PUBLISHED = {
    'DeepSeek LLM 2024': {
        'source': 'DeepSeek-AI 2024, arXiv:2401.02954, §3.1, eq. 1',
        'lr': (0.3118, {'C': -0.1250}), 'batch': (0.2920, {'C': 0.3271}),
        'batch_unit': 'tokens',
        'counting': 'C = M·D, M non-embedding FLOPs per token (attention included), not 6ND'},
    'Step Law 2025': {
        'source': 'Li et al. 2025, "Predictable Scale: Part I", arXiv:2503.04715, eq. 1-2',
        'lr': (1.79, {'N': -0.713, 'D': 0.307}), 'batch': (0.58, {'D': 0.571}),
        'batch_unit': 'tokens', 'counting': 'N non-embedding parameters'},
    'Porian et al. 2024': {
        'source': 'Porian et al. 2024, arXiv:2406.19146, §4 (fits over 108M-sized models)',
        'lr': (0.0047 * 108e6**(1 / 3), {'N': -1 / 3}),
        'batch': (160 * 108e6**(-2 / 3), {'N': 2 / 3}),
        'batch_unit': 'sequences of 2048 tokens',
        'counting': 'N their standard count: parameters with the output head'},
}
