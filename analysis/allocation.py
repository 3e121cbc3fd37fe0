"""Compute-optimal allocation of a budget C between parameters N and tokens D under L(N, D).

Closed form for C = 6ND; numerically for any FLOPs-per-token function f(N) (C = f(N)·D, as for
the Chinchilla FLOP convention or a DiT). Every function takes
numpy arrays that broadcast, so one call covers a grid of budgets and all bootstrap samples.

`Compute` is the FLOP convention of a fitted table: C = r(N)·N·D with the ratio r = C/(N·D)
read off the table's own points and interpolated linearly in log N (held at the end values
outside the sizes trained). That is exact when the ratio is constant and needs no knowledge of the
model; `Compute.six_nd()` is the C = 6ND convention.

`within_reason` keeps a plan near its data: a budget whose compute-optimal N is below the smallest
model fitted is refused, and one more than FAR times beyond the fitted budgets gets a warning.
"""

import dataclasses
from typing import Callable

import numpy as np

from analysis import errors
from analysis import hardware
from analysis import laws

Array = np.ndarray
_GOLDEN = (np.sqrt(5) - 1) / 2
FAR = 1000.0  # a budget this many times beyond the fitted ones is an extrapolation worth a warning


def optimal_6nd(C, A, B, alpha, beta, **_) -> tuple[Array, Array]:
  """N_opt = G (C/6)^a, D_opt = G⁻¹ (C/6)^b, with G = (αA / βB)^(1/(α+β))."""
  a, b = laws.exponents(alpha, beta)
  G = laws.allocation_constant(A, B, alpha, beta)
  return G * (C / 6)**a, (C / 6)**b / G


def _golden_min(h: Callable[[Array], Array], lo: Array, hi: Array, iters: int = 120) -> Array:
  """Minimiser of a unimodal h on [lo, hi], elementwise over broadcast arrays."""
  for _ in range(iters):
    u1, u2 = hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo)
    left = h(u1) <= h(u2)
    lo, hi = np.where(left, lo, u1), np.where(left, u2, hi)
  return (lo + hi) / 2


def optimal_numeric(C, A, B, alpha, beta, flops_per_token: Callable, **_) -> tuple[Array, Array]:
  """argmin over N of A/N^α + B/D^β with D = C / f(N) from the budget."""
  C = np.asarray(C, float)

  def tokens(N):
    return C / flops_per_token(N)

  def reducible(u):
    N = np.exp(u)
    return A / N**alpha + B / tokens(N)**beta

  shape = np.broadcast(C, A, B, alpha, beta).shape
  u = _golden_min(reducible, np.zeros(shape), np.log(np.broadcast_to(C, shape)))
  return np.exp(u), tokens(np.exp(u))


@dataclasses.dataclass(frozen=True)
class Compute:
  """C = ratio(N)·N·D, the ratio interpolated linearly in log N between knots (constant beyond)."""
  convention: str  # 'table' (ratio read off the points) or '6nd'
  N_K: np.ndarray  # the knots: distinct sizes, increasing
  ratio_K: np.ndarray

  @classmethod
  def six_nd(cls) -> 'Compute':
    return cls('6nd', np.ones(1), np.full(1, 6.0))

  @classmethod
  def from_table(cls, N, D, C) -> 'Compute':
    """Knots at each distinct N: the geometric mean of that size's C/(N·D)."""
    N, D, C = (np.asarray(v, np.float64) for v in (N, D, C))
    knots, inverse = np.unique(N, return_inverse=True)
    log_ratio = np.bincount(inverse, np.log(C / (N * D))) / np.bincount(inverse)
    return cls('table', knots, np.exp(log_ratio))

  @property
  def constant(self) -> bool:
    return bool(np.ptp(self.ratio_K) <= 1e-12 * self.ratio_K.max())

  def ratio(self, N) -> Array:
    return np.interp(np.log(N), np.log(self.N_K), self.ratio_K)

  def flops_per_token(self, N) -> Array:
    return self.ratio(N) * N

  def to_json(self) -> dict:
    return {'convention': self.convention,
            'ratio_range': [float(self.ratio_K.min()), float(self.ratio_K.max())],
            'knots': {'N': self.N_K.tolist(), 'ratio': self.ratio_K.tolist()}}

  @classmethod
  def from_json(cls, d: dict) -> 'Compute':
    N_K, ratio_K = (np.asarray(d['knots'][k], np.float64) for k in ('N', 'ratio'))
    if d['convention'] not in ('table', '6nd') or N_K.shape != ratio_K.shape or not N_K.size or (
        not (np.isfinite(N_K).all() and np.isfinite(ratio_K).all() and (N_K > 0).all() and
             (ratio_K > 0).all() and (np.diff(N_K) > 0).all())):
      raise ValueError('compute: bad knots')
    return cls(d['convention'], N_K, ratio_K)


def optimal(C, params: dict, compute: Compute | None = None) -> tuple[Array, Array]:
  """N_opt, D_opt for a Chinchilla-law parameter dict under a FLOP convention (None: 6ND).

  A constant ratio r is C = 6ND at the budget 6C/r, in closed form; otherwise numerically."""
  if compute is None or compute.constant:
    scale = 1.0 if compute is None else 6.0 / compute.ratio_K[0]
    return optimal_6nd(np.asarray(C, float) * scale, **params)
  return optimal_numeric(C, flops_per_token=compute.flops_per_token, **params)


def optimal_loss(C, params: dict, compute: Compute | None = None) -> Array:
  N, D = optimal(C, params, compute)
  return laws.chinchilla(N, D, **params)


def _smallest_budget(short, shape, iters: int = 64) -> Array:
  """Smallest C in [1, 1e45] where short(C) turns False (short must fall with C), by bisection
  in log C: 64 halvings reach float precision."""
  lo, hi = np.full(shape, np.log(1.0)), np.full(shape, np.log(1e45))
  for _ in range(iters):
    mid = (lo + hi) / 2
    below = short(np.exp(mid))
    lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
  return np.exp(hi)


def compute_for_loss(target, params: dict, compute: Compute | None = None) -> Array:
  """Smallest budget whose compute-optimal loss reaches `target`; NaN where target ≤ E."""
  C = _smallest_budget(lambda c: optimal_loss(c, params, compute) > target,
                       np.broadcast(target, *params.values()).shape)
  return np.where(optimal_loss(C, params, compute) <= target * (1 + 1e-9), C, np.nan)


def within_reason(C: float, params: dict, compute: Compute | None, fitted_range: dict | None,
                  what: str) -> str | None:
  """Refuses (InputError) a budget C whose compute-optimal N is below the smallest model fitted;
  returns a one-line warning when C lies over FAR times outside the fitted budgets, or when the
  fit does not record its range; else None. `what` names the budget, e.g. '--flops=1e20'."""
  if not fitted_range:
    return (f'the fit records no fitted_range (written before it existed), so {what} cannot be '
            'checked against the budgets fitted; refit to get the check')
  n_min, (c_lo, c_hi) = fitted_range['N'][0], fitted_range['C']
  n_opt = float(optimal(C, params, compute)[0])
  if n_opt < n_min:
    enough = float(_smallest_budget(lambda c: optimal(c, params, compute)[0] < n_min, ()))
    raise errors.InputError(f'{what} puts the compute-optimal model at N = {n_opt:.3g}, below the '
                            f'smallest model fitted (N = {n_min:.3g}), where the law says nothing: '
                            f'plan a budget of at least {enough:.3g}')
  factor = C / c_hi if C > c_hi else c_lo / C
  if factor > FAR:
    return (f'{what} lies {factor:.3g}x beyond the budgets fitted (C = {c_lo:.3g} to {c_hi:.3g}), '
            f'over {FAR:.0f}x: the plan extrapolates the law that far, so treat it as a guess')
  return None


def derived(params: dict, C, compute: Compute | None = None) -> dict[str, Array]:
  """a, b and, at budget C, N_opt, D_opt, tokens per parameter and the local exponents
  a_local = d log N_opt / d log C, b_local = d log D_opt / d log C; over any samples.

  a and b are the law's exponents, β/(α+β) and α/(α+β): the slopes wherever the FLOP ratio is
  constant (always for C = 6ND); a_local and b_local are the slopes under `compute` at C."""
  a, b = laws.exponents(params['alpha'], params['beta'])
  N, D = optimal(C, params, compute)
  h = 0.01  # central difference in log C; the slope varies slowly, so h² is negligible
  N_hi, D_hi = optimal(np.asarray(C, float) * np.exp(h), params, compute)
  N_lo, D_lo = optimal(np.asarray(C, float) * np.exp(-h), params, compute)
  return {'a': a, 'b': b, 'N_opt': N, 'D_opt': D, 'tokens_per_param': D / N,
          'a_local': np.log(N_hi / N_lo) / (2 * h), 'b_local': np.log(D_hi / D_lo) / (2 * h)}


def plan(params: dict, device: hardware.Device, mfu: float, flops=None, target_loss=None,
         price_per_hour: float | None = None, watts: float | None = None,
         compute: Compute | None = None) -> dict:
  """A compute-optimal run at a budget (or at the least budget reaching a target loss) on a
  device: N, D, FLOPs, loss, device-hours, energy and cost. params may hold arrays (bootstrap
  samples), results follow them. `compute` is the fit's FLOP convention (None: C = 6ND)."""
  C = np.broadcast_to(flops, np.shape(params['E'])) if flops else compute_for_loss(
      target_loss, params, compute)
  N, D = optimal(C, params, compute)
  hours = C / (device.peak_flops * mfu) / 3600
  out = {'N_opt': N, 'D_opt': D, 'tokens_per_param': D / N, 'FLOPs': C,
         'loss': optimal_loss(C, params, compute), 'device_hours': hours,
         'energy_MWh': hours * (watts or device.watts) / 1e6}
  if price_per_hour is not None:
    out['cost'] = hours * price_per_hour
  return out
