"""Log-space Huber objective for sums of power laws, batched over parameter rows.

The model is log ŷ = logsumexp(c_1 − α_1 log x_1, …, c_K − α_K log x_K [, e]), i.e.
ŷ = Σ_k C_k / x_k^α_k [+ E]. With K = 2 and the constant this is Chinchilla's
L(N, D) = E + A/N^α + B/D^β; with K = 1 it is the one-variable law E + (x0/x)^α, C_1 = x0^α.
A parameter row is [c_1 … c_K, (e), α_1 … α_K].

Speed matters (4,500 starts × 240 points per evaluation), so rows are processed in chunks that
stay in cache, and the logsumexp is shifted by one number per row rather than per point: each
term is linear in log x, so its largest value over the points sits at an end of the log x range.
"""

import dataclasses

import numpy as np

DELTA = 1e-3
CHUNK = 64  # rows per block: a block's arrays stay in cache


def huber(r: np.ndarray, delta: float = DELTA) -> np.ndarray:
  """0.5 r² for |r| ≤ δ, δ(|r| − δ/2) beyond; written as c(r − c/2) with c = clip(r, −δ, δ)."""
  c = np.clip(r, -delta, delta)
  return c * (r - 0.5 * c)


def _rows(a_WxP: np.ndarray, rows_n: np.ndarray) -> np.ndarray:
  return a_WxP if len(a_WxP) == 1 else a_WxP[rows_n]


@dataclasses.dataclass(frozen=True)
class Problem:
  logx_KxP: np.ndarray  # log of each input variable at each point
  logy_YxP: np.ndarray  # log of the observed loss; Y = 1 (shared) or one row per batch problem
  weight_WxP: np.ndarray  # W = 1 (shared) or one row per batch problem (bootstrap counts)
  constant: bool = True  # include the irreducible term e = log E
  delta: float = DELTA
  mean: bool = False  # average instead of sum: the known cause of the Chinchilla discrepancy

  def __call__(self, p_nxQ: np.ndarray, rows_n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Objective and gradient for each row; the lbfgs.Objective signature."""
    f_n, g_nxQ = np.empty(len(p_nxQ)), np.empty_like(p_nxQ, dtype=float)
    with np.errstate(all='ignore'):  # wild trial steps give inf or NaN; line searches reject them
      for lo in range(0, len(p_nxQ), CHUNK):
        block = slice(lo, lo + CHUNK)
        f_n[block], g_nxQ[block] = self._block(p_nxQ[block], rows_n[block])
    return f_n, g_nxQ

  def _weights(self, rows_n: np.ndarray) -> np.ndarray:
    w_nxP = _rows(self.weight_WxP, rows_n)
    return w_nxP / w_nxP.sum(1, keepdims=True) if self.mean else w_nxP

  def _block(self, p_nxQ: np.ndarray, rows_n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    K, X_KxP = len(self.logx_KxP), self.logx_KxP
    c_nxK, al_nxK = p_nxQ[:, :K], p_nxQ[:, -K:]
    top_nxK = c_nxK - np.where(al_nxK > 0, al_nxK * X_KxP.min(1), al_nxK * X_KxP.max(1))
    shift_n = top_nxK.max(1)
    if self.constant:
      shift_n = np.maximum(shift_n, p_nxQ[:, K])
    u_KxnxP = [np.exp((c_nxK[:, k] - shift_n)[:, None] - al_nxK[:, k, None] * X_KxP[k])
               for k in range(K)]
    total_nxP = sum(u_KxnxP[1:], u_KxnxP[0].copy())
    if self.constant:
      ue_n = np.exp(p_nxQ[:, K] - shift_n)
      total_nxP += ue_n[:, None]
    r_nxP = np.log(total_nxP)
    r_nxP += (shift_n[:, None] - _rows(self.logy_YxP, rows_n))
    clip_nxP = np.clip(r_nxP, -self.delta, self.delta)
    w_nxP = self._weights(rows_n)
    shared = len(w_nxP) == 1
    h_nxP = clip_nxP * (r_nxP - 0.5 * clip_nxP)
    f_n = h_nxP @ w_nxP[0] if shared else np.einsum('np,np->n', h_nxP, w_nxP)
    dr_nxP = np.divide(clip_nxP, total_nxP, out=clip_nxP)
    if not shared:
      dr_nxP *= w_nxP
    g_nxQ = np.empty_like(p_nxQ, dtype=float)
    w_P = w_nxP[0] if shared else np.ones(X_KxP.shape[1])
    for k in range(K):
      gk_nx2 = (dr_nxP * u_KxnxP[k]) @ np.stack([w_P, -w_P * X_KxP[k]], 1)
      g_nxQ[:, k], g_nxQ[:, -K + k] = gk_nx2[:, 0], gk_nx2[:, 1]
    if self.constant:
      g_nxQ[:, K] = ue_n * (dr_nxP @ w_P)
    return f_n, g_nxQ
