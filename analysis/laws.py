"""Every scaling law as a plain function, and each law's parameters named in one place.

A law spec (the `Law` protocol) is where a law meets the fitting engine (analysis.engine): the
table columns it reads, its parameter names in fit.json's order, the row the engine moves (log
scales and exponents, so that a row is unconstrained), the residual model of the objective
(analysis.objective) and the grid of starts. `PowerSum` specs are Chinchilla's law and the
one-variable laws; `DataConstrained` is Muennighoff et al.'s. A new law (a loss curve across
schedules, a learning-rate law) is one more spec beside them. The loss-curve laws across
learning-rate schedules are: their functions in analysis.curve_laws, their specs (which hold
their curves, as a table cannot) in analysis.curve_specs.
"""

import dataclasses
import itertools
from typing import Protocol

import numpy as np
import pandas as pd

from analysis import objective


def chinchilla(N, D, E, A, B, alpha, beta):
  """L(N, D) = E + A/N^α + B/D^β (Hoffmann et al. 2022, Approach 3)."""
  return E + A / N**alpha + B / D**beta


def saturating_power(x, E, x0, alpha):
  """L(x) = E + (x0/x)^α: a Kaplan-style law in one variable with an irreducible loss."""
  return E + (x0 / x)**alpha


def pure_power(x, x0, alpha):
  """L(x) = (x0/x)^α (Kaplan et al. 2020)."""
  return (x0 / x)**alpha


def exponents(alpha, beta):
  """Compute-optimal exponents under C ∝ ND: N_opt ∝ C^a, D_opt ∝ C^b."""
  return beta / (alpha + beta), alpha / (alpha + beta)


def allocation_constant(A, B, alpha, beta):
  """G = (αA / βB)^(1/(α+β)): N_opt = G (C/6)^a and D_opt = G⁻¹ (C/6)^b under C = 6ND."""
  return (alpha * A / (beta * B))**(1 / (alpha + beta))


def optimal_params_for_tokens(D, A, B, alpha, beta):
  """N_opt for which D is the compute-optimal data under L = E + A/N^α + B/D^β and C = 6ND:
  N_opt = G (G D)^(β/α) (Hoffmann et al. 2022, eq. 4, inverted)."""
  G = allocation_constant(A, B, alpha, beta)
  return G * (G * D)**(beta / alpha)


def effective(unique, total, r_star):
  """Muennighoff et al. (2023), eq. 5-6: the effective count of `total` when only `unique` of it
  is new: unique + unique R* (1 - exp(-R/R*)), R = total/unique - 1 repeats (0 when total ≤ unique,
  where the count is total itself). The same form gives D' from (U_D, D) and N' from (U_N, N)."""
  unique = np.minimum(unique, total)
  repeats = total / unique - 1
  return unique + unique * r_star * -np.expm1(-repeats / r_star)


def data_constrained(N, D, U, E, A, B, alpha, beta, R_D_star, R_N_star):
  """L = E + A/N'^α + B/D'^β with D' from U unique tokens seen D/U times, and N' from U_N =
  min(N, N_opt(U_D)): parameters beyond those compute-optimal for the unique data are worth less
  (Muennighoff et al. 2023, "Scaling Data-Constrained Language Models", eq. 7)."""
  U_D = np.minimum(U, D)
  U_N = np.minimum(N, optimal_params_for_tokens(U_D, A, B, alpha, beta))
  return chinchilla(effective(U_N, N, R_N_star), effective(U_D, D, R_D_star), E, A, B, alpha, beta)


class Law(Protocol):
  name: str
  variables: tuple[str, ...]  # the table columns the law reads
  params: tuple[str, ...]  # named parameters, in fit.json's order

  def named(self, x_Q: np.ndarray) -> dict[str, np.ndarray]:
    """Named parameters of one row or of a stack of rows (leading axes are kept)."""

  def row(self, p: dict) -> np.ndarray:
    """Inverse of `named` for one parameter set, e.g. to start a fit at published values."""

  def predict(self, p: dict, **x) -> np.ndarray:
    """The law at the given variables, e.g. predict(p, N=..., D=...)."""

  def residuals(self, table: pd.DataFrame) -> objective.Residuals:
    """The objective's residual model on a table of points."""

  def starts(self) -> np.ndarray:
    """The grid of starts, in row layout."""


GRID_C = np.arange(0, 30, 5.0)  # a, b (log A, log B)
GRID_E = np.arange(-1, 1.5, 0.5)  # e = log E
GRID_ALPHA = np.arange(0, 2.5, 0.5)  # alpha, beta


@dataclasses.dataclass(frozen=True)
class PowerSum:
  """Σ_k C_k / x_k^α_k [+ E]; the row is [c_1 … c_K, (e), α_1 … α_K], c = log C, e = log E."""
  variables: tuple[str, ...]  # ('N', 'D') for Chinchilla; ('C',), ('N',) or ('D',) for one variable
  constant: bool = True  # the irreducible loss E

  @property
  def name(self) -> str:
    return 'chinchilla' if len(self.variables) == 2 else 'power'

  @property
  def params(self) -> tuple[str, ...]:
    if self.name == 'chinchilla':
      return ('E', 'A', 'B', 'alpha', 'beta')
    return ('E', 'x0', 'alpha') if self.constant else ('x0', 'alpha')

  @property
  def n_params(self) -> int:
    return 2 * len(self.variables) + int(self.constant)

  def named(self, x_Q: np.ndarray) -> dict[str, np.ndarray]:
    x_Q = np.asarray(x_Q, dtype=float)
    if self.name == 'chinchilla':
      return dict(E=np.exp(x_Q[..., 2]), A=np.exp(x_Q[..., 0]), B=np.exp(x_Q[..., 1]),
                  alpha=x_Q[..., 3], beta=x_Q[..., 4])
    with np.errstate(divide='ignore', over='ignore'):
      x0 = np.exp(x_Q[..., 0] / x_Q[..., -1])
    return dict(E=np.exp(x_Q[..., 1]), x0=x0, alpha=x_Q[..., -1]) if self.constant else dict(
        x0=x0, alpha=x_Q[..., -1])

  def row(self, p: dict) -> np.ndarray:
    if self.name == 'chinchilla':
      return np.array([np.log(p['A']), np.log(p['B']), np.log(p['E']), p['alpha'], p['beta']])
    c = p['alpha'] * np.log(p['x0'])
    return np.array([c, np.log(p['E']), p['alpha']] if self.constant else [c, p['alpha']])

  def predict(self, p: dict, **x) -> np.ndarray:
    if self.name == 'chinchilla':
      return chinchilla(x['N'], x['D'], **p)
    v = x[self.variables[0]]
    return saturating_power(v, **p) if self.constant else pure_power(v, **p)

  def residuals(self, table: pd.DataFrame) -> objective.PowerSum:
    return objective.PowerSum(np.stack([np.log(np.asarray(table[v], float))
                                        for v in self.variables]), self.constant)

  def starts(self) -> np.ndarray:
    """The product grid; 4,500 starts for Chinchilla's law (the replication's grid)."""
    K = len(self.variables)
    axes = [GRID_C] * K + [GRID_E] * int(self.constant) + [GRID_ALPHA] * K
    return np.array(list(itertools.product(*axes)))


CHINCHILLA = PowerSum(('N', 'D'))


@dataclasses.dataclass(frozen=True)
class DataConstrained:
  """`data_constrained`; the row is [log R_D*, log R_N*, log E, log A, log B, α, β]."""
  name = 'data_constrained'
  variables = ('N', 'D', 'U')
  params = ('E', 'A', 'B', 'alpha', 'beta', 'R_D_star', 'R_N_star')
  n_params = 7
  log_r_starts = np.log([1.0, 10.0, 100.0])  # the grid of each log R*

  def named(self, x_Q: np.ndarray) -> dict[str, np.ndarray]:
    x_Q = np.asarray(x_Q, dtype=float)
    return dict(E=np.exp(x_Q[..., 2]), A=np.exp(x_Q[..., 3]), B=np.exp(x_Q[..., 4]),
                alpha=x_Q[..., 5], beta=x_Q[..., 6], R_D_star=np.exp(x_Q[..., 0]),
                R_N_star=np.exp(x_Q[..., 1]))

  def row(self, p: dict) -> np.ndarray:
    r_n = p.get('R_N_star') or 1.0  # None: not identified, and then it changes no prediction
    return np.array([np.log(p.get('R_D_star', 1.0)), np.log(r_n), np.log(p['E']), np.log(p['A']),
                     np.log(p['B']), p['alpha'], p['beta']])

  def predict(self, p: dict, **x) -> np.ndarray:
    return data_constrained(x['N'], x['D'], x['U'], **{**p, 'R_N_star': p['R_N_star'] or 1.0})

  def residuals(self, table: pd.DataFrame) -> objective.Numeric:
    N, D, U = (np.asarray(table[k], float)[None] for k in self.variables)

    def log_predict(x_nxQ):
      p = {k: v[:, None] for k, v in self.named(x_nxQ).items()}
      return np.log(data_constrained(N, D, U, **p))

    return objective.Numeric(log_predict)

  def starts(self) -> np.ndarray:
    """The grid of log R_D*, log R_N*; the Chinchilla part comes from a fit (data_constrained)."""
    return np.array(list(itertools.product(self.log_r_starts, self.log_r_starts)))


DATA_CONSTRAINED = DataConstrained()
