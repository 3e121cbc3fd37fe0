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
