"""Compute-optimal allocation of a budget C between parameters N and tokens D under L(N, D).

Closed form for C = 6ND; numerically for any FLOPs-per-token function f(N) (C = f(N)·D, as for
the Chinchilla FLOP convention or a DiT) or any C(N, D) increasing in D. Every function takes
numpy arrays that broadcast, so one call covers a grid of budgets and all bootstrap samples.
"""

from typing import Callable

import numpy as np

from analysis import laws

Array = np.ndarray
_GOLDEN = (np.sqrt(5) - 1) / 2


def optimal_6nd(C, A, B, alpha, beta, **_) -> tuple[Array, Array]:
  """N_opt = G (C/6)^a, D_opt = G⁻¹ (C/6)^b, with G = (αA / βB)^(1/(α+β))."""
  a, b = laws.exponents(alpha, beta)
  G = (alpha * A / (beta * B))**(1 / (alpha + beta))
  return G * (C / 6)**a, (C / 6)**b / G


def _golden_min(h: Callable[[Array], Array], lo: Array, hi: Array, iters: int = 120) -> Array:
  """Minimiser of a unimodal h on [lo, hi], elementwise over broadcast arrays."""
  for _ in range(iters):
    u1, u2 = hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo)
    left = h(u1) <= h(u2)
    lo, hi = np.where(left, lo, u1), np.where(left, u2, hi)
  return (lo + hi) / 2


def _tokens_for_budget(flops: Callable, N: Array, C: Array, iters: int = 200) -> Array:
  """D with flops(N, D) = C, by bisection in log D (flops must increase with D)."""
  lo, hi = np.zeros(np.broadcast(N, C).shape), np.full(np.broadcast(N, C).shape, 150.0)
  for _ in range(iters):
    mid = (lo + hi) / 2
    low = flops(N, np.exp(mid)) < C
    lo, hi = np.where(low, mid, lo), np.where(low, hi, mid)
  return np.exp((lo + hi) / 2)


def optimal_numeric(C, A, B, alpha, beta, flops_per_token: Callable | None = None,
                    flops: Callable | None = None, **_) -> tuple[Array, Array]:
  """argmin over N of A/N^α + B/D^β with D from the budget: D = C / f(N), or flops(N, D) = C."""
  if (flops_per_token is None) == (flops is None):
    raise ValueError('give exactly one of flops_per_token=f(N) or flops=C(N, D)')
  C = np.asarray(C, float)

  def tokens(N):
    return C / flops_per_token(N) if flops is None else _tokens_for_budget(flops, N, C)

  def reducible(u):
    N = np.exp(u)
    return A / N**alpha + B / tokens(N)**beta

  shape = np.broadcast(C, A, B, alpha, beta).shape
  u = _golden_min(reducible, np.zeros(shape), np.log(np.broadcast_to(C, shape)))
  return np.exp(u), tokens(np.exp(u))


def optimal(C, params: dict, flops_per_token: Callable | None = None) -> tuple[Array, Array]:
  """N_opt, D_opt for a Chinchilla-law parameter dict; closed form when f(N) is None (6N)."""
  if flops_per_token is None:
    return optimal_6nd(C, **params)
  return optimal_numeric(C, flops_per_token=flops_per_token, **params)


def optimal_loss(C, params: dict, flops_per_token: Callable | None = None) -> Array:
  N, D = optimal(C, params, flops_per_token)
  return laws.chinchilla(N, D, **params)


def compute_for_loss(target, params: dict, flops_per_token: Callable | None = None,
                     iters: int = 200) -> Array:
  """Smallest budget whose compute-optimal loss reaches `target`; NaN where target ≤ E."""
  shape = np.broadcast(target, *params.values()).shape
  lo, hi = np.full(shape, np.log(1.0)), np.full(shape, np.log(1e45))
  for _ in range(iters):
    mid = (lo + hi) / 2
    above = optimal_loss(np.exp(mid), params, flops_per_token) > target
    lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
  C = np.exp(hi)
  return np.where(optimal_loss(C, params, flops_per_token) <= target * (1 + 1e-9), C, np.nan)


def derived(params: dict, C) -> dict[str, Array]:
  """a, b and, at budget C (C = 6ND), N_opt, D_opt and tokens per parameter; over any samples."""
  a, b = laws.exponents(params['alpha'], params['beta'])
  N, D = optimal_6nd(C, **params)
  return {'a': a, 'b': b, 'N_opt': N, 'D_opt': D, 'tokens_per_param': D / N}
