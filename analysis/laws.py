"""Scaling laws as plain functions, and the named parameters behind a fitted parameter row.

A row is the objective's layout (analysis.objective): [c_1 … c_K, (e), α_1 … α_K].
"""

import dataclasses

import numpy as np


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


@dataclasses.dataclass(frozen=True)
class Law:
  variables: tuple[str, ...]  # ('N', 'D') for Chinchilla; ('C',), ('N',) or ('D',) for one variable
  constant: bool = True  # the irreducible loss E

  @property
  def name(self) -> str:
    return 'chinchilla' if len(self.variables) == 2 else 'power'

  @property
  def n_params(self) -> int:
    return 2 * len(self.variables) + int(self.constant)

  def named(self, x_Q: np.ndarray) -> dict[str, np.ndarray]:
    """Named parameters of one row or of a stack of rows (leading axes are kept)."""
    x_Q = np.asarray(x_Q, dtype=float)
    if self.name == 'chinchilla':
      return dict(E=np.exp(x_Q[..., 2]), A=np.exp(x_Q[..., 0]), B=np.exp(x_Q[..., 1]),
                  alpha=x_Q[..., 3], beta=x_Q[..., 4])
    with np.errstate(divide='ignore', over='ignore'):
      x0 = np.exp(x_Q[..., 0] / x_Q[..., -1])
    return dict(E=np.exp(x_Q[..., 1]), x0=x0, alpha=x_Q[..., -1]) if self.constant else dict(
        x0=x0, alpha=x_Q[..., -1])

  def row(self, p: dict[str, float]) -> np.ndarray:
    """Inverse of `named` for one parameter set, e.g. to start a fit at published values."""
    if self.name == 'chinchilla':
      return np.array([np.log(p['A']), np.log(p['B']), np.log(p['E']), p['alpha'], p['beta']])
    c = p['alpha'] * np.log(p['x0'])
    return np.array([c, np.log(p['E']), p['alpha']] if self.constant else [c, p['alpha']])

  def predict(self, p: dict, **x) -> np.ndarray:
    """The law at the given variables, e.g. predict(p, N=..., D=...)."""
    if self.name == 'chinchilla':
      return chinchilla(x['N'], x['D'], **p)
    v = x[self.variables[0]]
    return saturating_power(v, **p) if self.constant else pure_power(v, **p)


CHINCHILLA = Law(('N', 'D'))


def effective(unique, total, r_star):
  """Muennighoff et al. (2023), eq. 5-6: the effective count of `total` when only `unique` of it
  is new: unique + unique R* (1 - exp(-R/R*)), R = total/unique - 1 repeats (0 when total ≤ unique,
  where the count is total itself). The same form gives D' from (U_D, D) and N' from (U_N, N)."""
  unique = np.minimum(unique, total)
  repeats = total / unique - 1
  return unique + unique * r_star * -np.expm1(-repeats / r_star)


def optimal_params_for_tokens(D, A, B, alpha, beta):
  """N_opt for which D is the compute-optimal data under L = E + A/N^α + B/D^β and C = 6ND:
  N_opt = G (G D)^(β/α) with G = (αA / βB)^(1/(α+β)) (Hoffmann et al. 2022, eq. 4, inverted)."""
  G = (alpha * A / (beta * B))**(1 / (alpha + beta))
  return G * (G * D)**(beta / alpha)


def data_constrained(N, D, U, E, A, B, alpha, beta, R_D_star, R_N_star):
  """L = E + A/N'^α + B/D'^β with D' from U unique tokens seen D/U times, and N' from U_N =
  min(N, N_opt(U_D)): parameters beyond those compute-optimal for the unique data are worth less
  (Muennighoff et al. 2023, "Scaling Data-Constrained Language Models", eq. 7)."""
  U_D = np.minimum(U, D)
  U_N = np.minimum(N, optimal_params_for_tokens(U_D, A, B, alpha, beta))
  return chinchilla(effective(U_N, N, R_N_star), effective(U_D, D, R_D_star), E, A, B, alpha, beta)
