"""The one objective every law is fitted with: a Huber loss of log residuals, batched over rows.

A `Problem` scores parameter rows (the layout a law names, analysis.laws) against the observed
losses, with a weight per point: one shared row of weights, or one per batch problem (bootstrap
counts). Summed by default; `mean` averages instead (the known cause of the Chinchilla
discrepancy, docs/analysis.md). What differs between laws is the residual model: log L̂ − log L at
every point for a block of rows, and the gradient's chain rule through it.

- `PowerSum`: log L̂ = logsumexp(c_1 − α_1 log x_1, …, c_K − α_K log x_K [, e]), i.e.
  L̂ = Σ_k C_k / x_k^α_k [+ E], a row being [c_1 … c_K, (e), α_1 … α_K]. Chinchilla's law and the
  one-variable law E + (x0/x)^α. Analytic gradient; the logsumexp is shifted by one number per row,
  not per point: each term is linear in log x, so its largest value sits at an end of the range.
- `Numeric`: any vectorised log L̂(rows); its Jacobian by central differences, which are accurate
  to ~1e-10 on residuals of order 1e-3 (the data-constrained law, and any law without a gradient).

Speed matters (4,500 starts × 240 points per evaluation), so rows go in blocks that stay in cache.
"""

import dataclasses
from typing import Callable, Protocol

import numpy as np

DELTA = 1e-3
CHUNK = 64  # rows per block: a block's arrays stay in cache
STEP = 6e-6  # central-difference step in the row's coordinates: about the cube root of eps


def huber(r: np.ndarray, delta: float = DELTA) -> np.ndarray:
  """0.5 r² for |r| ≤ δ, δ(|r| − δ/2) beyond; written as c(r − c/2) with c = clip(r, −δ, δ)."""
  c = np.clip(r, -delta, delta)
  return c * (r - 0.5 * c)


# vjp(c_nxP, w_WxP) -> g_nxQ: Σ_p w_p c_p ∂r_p/∂x, W = 1 (shared weights) or n.
VJP = Callable[[np.ndarray, np.ndarray], np.ndarray]


class Residuals(Protocol):
  """Where a law meets the objective: log residuals of a block of rows, and their chain rule."""

  def __call__(self, p_nxQ: np.ndarray, logy_YxP: np.ndarray) -> tuple[np.ndarray, VJP]:
    ...


def _rows(a_WxP: np.ndarray, rows_n: np.ndarray) -> np.ndarray:
  return a_WxP if len(a_WxP) == 1 else a_WxP[rows_n]


@dataclasses.dataclass(frozen=True)
class Problem:
  residuals: Residuals
  logy_YxP: np.ndarray  # log of the observed loss; Y = 1 (shared) or one row per batch problem
  weight_WxP: np.ndarray  # W = 1 (shared) or one row per batch problem (bootstrap counts)
  delta: float = DELTA
  mean: bool = False  # average instead of sum

  def __call__(self, p_nxQ: np.ndarray, rows_n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Objective and gradient for each row; the lbfgs.Objective signature."""
    f_n, g_nxQ = np.empty(len(p_nxQ)), np.empty_like(p_nxQ, dtype=float)
    with np.errstate(all='ignore'):  # wild trial steps give inf or NaN; line searches reject them
      for lo in range(0, len(p_nxQ), CHUNK):
        block = slice(lo, lo + CHUNK)
        f_n[block], g_nxQ[block] = self._block(p_nxQ[block], rows_n[block])
    return f_n, g_nxQ

  def reweighted(self, weight_WxP: np.ndarray) -> 'Problem':
    return dataclasses.replace(self, weight_WxP=weight_WxP)

  def _block(self, p_nxQ: np.ndarray, rows_n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r_nxP, vjp = self.residuals(p_nxQ, _rows(self.logy_YxP, rows_n))
    clip_nxP = np.clip(r_nxP, -self.delta, self.delta)
    w_nxP = _rows(self.weight_WxP, rows_n)
    if self.mean:
      w_nxP = w_nxP / w_nxP.sum(1, keepdims=True)
    h_nxP = clip_nxP * (r_nxP - 0.5 * clip_nxP)
    f_n = h_nxP @ w_nxP[0] if len(w_nxP) == 1 else np.einsum('np,np->n', h_nxP, w_nxP)
    return f_n, vjp(clip_nxP, w_nxP)


@dataclasses.dataclass(frozen=True)
class PowerSum:
  logx_KxP: np.ndarray  # log of each input variable at each point
  constant: bool = True  # include the irreducible term e = log E

  def __call__(self, p_nxQ: np.ndarray, logy_YxP: np.ndarray) -> tuple[np.ndarray, VJP]:
    K, X_KxP = len(self.logx_KxP), self.logx_KxP
    c_nxK, al_nxK = p_nxQ[:, :K], p_nxQ[:, -K:]
    top_nxK = c_nxK - np.where(al_nxK > 0, al_nxK * X_KxP.min(1), al_nxK * X_KxP.max(1))
    shift_n = top_nxK.max(1)
    if self.constant:
      shift_n = np.maximum(shift_n, p_nxQ[:, K])
    u_KxnxP = [np.exp((c_nxK[:, k] - shift_n)[:, None] - al_nxK[:, k, None] * X_KxP[k])
               for k in range(K)]
    total_nxP = sum(u_KxnxP[1:], u_KxnxP[0].copy())
    ue_n = np.exp(p_nxQ[:, K] - shift_n) if self.constant else None
    if self.constant:
      total_nxP += ue_n[:, None]
    r_nxP = np.log(total_nxP)
    r_nxP += (shift_n[:, None] - logy_YxP)

    def vjp(c_nxP: np.ndarray, w_WxP: np.ndarray) -> np.ndarray:
      shared = len(w_WxP) == 1
      dr_nxP = np.divide(c_nxP, total_nxP, out=c_nxP)
      if not shared:
        dr_nxP *= w_WxP
      w_P = w_WxP[0] if shared else np.ones(X_KxP.shape[1])
      g_nxQ = np.empty_like(p_nxQ, dtype=float)
      for k in range(K):
        gk_nx2 = (dr_nxP * u_KxnxP[k]) @ np.stack([w_P, -w_P * X_KxP[k]], 1)
        g_nxQ[:, k], g_nxQ[:, -K + k] = gk_nx2[:, 0], gk_nx2[:, 1]
      if self.constant:
        g_nxQ[:, K] = ue_n * (dr_nxP @ w_P)
      return g_nxQ

    return r_nxP, vjp


@dataclasses.dataclass(frozen=True)
class Numeric:
  log_predict: Callable[[np.ndarray], np.ndarray]  # rows n×Q -> log L̂, n×P
  step: float = STEP

  def __call__(self, p_nxQ: np.ndarray, logy_YxP: np.ndarray) -> tuple[np.ndarray, VJP]:
    r_nxP = self.log_predict(p_nxQ) - logy_YxP
    J_QxnxP = []
    for q in range(p_nxQ.shape[1]):
      e_Q = np.zeros(p_nxQ.shape[1])
      e_Q[q] = self.step
      J_QxnxP.append((self.log_predict(p_nxQ + e_Q) - self.log_predict(p_nxQ - e_Q)) /
                     (2 * self.step))

    def vjp(c_nxP: np.ndarray, w_WxP: np.ndarray) -> np.ndarray:
      v_nxP = c_nxP * w_WxP
      return np.stack([np.einsum('np,np->n', v_nxP, J_nxP) for J_nxP in J_QxnxP], 1)

    return r_nxP, vjp
