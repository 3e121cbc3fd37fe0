"""The multi-power law's residual model for the engine's objective (analysis.objective.Residuals):
log L̂ − log L at every observation for a block of parameter rows, and the analytic chain rule.
The row layout is analysis.curve_specs.MultiPower's.
"""

import dataclasses

import numpy as np
from scipy import sparse

from analysis import curve_observations

ROWS = 16  # parameter rows whose per-term arrays are computed together: they stay in cache


@dataclasses.dataclass(frozen=True)
class MultiPowerResiduals:
  """log L̂ − log L at the observations for rows [L0, a, α, d, c, log β, log γ], with the analytic
  chain rule (objective.Residuals). With h = G/β = (1 − u^(−β))/β, u = 1 + C'·x = 1 + e^z,
  z = c − γ·ℓ + log S_k: B'·G = e^d·h, ∂h/∂z = u^(−β)·σ(z), ∂h/∂log β = u^(−β)·log u − h and
  ∂z/∂log γ = −γ·ℓ."""
  obs: curve_observations.Observations
  log_area_N: np.ndarray  # log S1'(t) at the nodes, centred
  node_J: np.ndarray
  drop_J: np.ndarray
  log_lr_J: np.ndarray  # centred: minus log_lr_centre
  log_lr_centre: float
  log_area_J: np.ndarray
  sum_NxJ: sparse.csr_matrix

  def _terms(self, c_n1, beta_n1, gamma_n1):
    """Per term, for a block of rows: σ(z), u^(−β), log u and h."""
    z_nxJ = c_n1 - gamma_n1 * self.log_lr_J + self.log_area_J
    ez_nxJ = np.exp(np.minimum(z_nxJ, 600.0))  # C'·x; beyond e^600, G is 1 to the last bit
    u_nxJ = 1 + ez_nxJ
    log_u_nxJ = np.log(u_nxJ)
    rest_nxJ = np.exp(-beta_n1 * log_u_nxJ)  # u^(−β) = 1 − G
    return ez_nxJ / u_nxJ, rest_nxJ, log_u_nxJ, -np.expm1(-beta_n1 * log_u_nxJ) / beta_n1

  def __call__(self, p_nxQ: np.ndarray, logy_YxP: np.ndarray):
    L0, a, alpha, d, c, log_beta, log_gamma = (p_nxQ[:, q:q + 1] for q in range(7))
    beta, gamma = np.exp(log_beta), np.exp(log_gamma)
    blocks = [slice(lo, lo + ROWS) for lo in range(0, len(p_nxQ), ROWS)]
    power_nxN = np.exp(a - alpha * self.log_area_N)
    drop_nxN = np.concatenate([np.asarray(self.sum_NxJ @ (
        self._terms(c[b], beta[b], gamma[b])[3] * self.drop_J).T).T for b in blocks])
    scale_n1 = np.exp(d)
    pred_nxP = self.obs.observe(L0 + power_nxN - scale_n1 * drop_nxN)
    r_nxP = np.log(pred_nxP) - logy_YxP

    def vjp(c_nxP: np.ndarray, w_WxP: np.ndarray) -> np.ndarray:
      v_nxN = np.asarray(self.obs.average_PxN.T @ (c_nxP * w_WxP / pred_nxP).T).T
      vp_nxN = v_nxN * power_nxN
      g_nxQ = np.empty_like(p_nxQ, dtype=float)
      g_nxQ[:, :4] = np.column_stack([v_nxN.sum(1), vp_nxN.sum(1),
                                      -(vp_nxN * self.log_area_N).sum(1),
                                      -(v_nxN * scale_n1 * drop_nxN).sum(1)])
      for b in blocks:  # the per-term arrays again, a block of rows at a time
        sigma, rest, log_u, h = self._terms(c[b], beta[b], gamma[b])
        vt_nxJ = -scale_n1[b] * v_nxN[b][:, self.node_J] * self.drop_J  # ∂objective/∂h
        dz_nxJ = vt_nxJ * rest * sigma
        g_nxQ[b, 4] = dz_nxJ.sum(1)
        g_nxQ[b, 5] = (vt_nxJ * (rest * log_u - h)).sum(1)
        g_nxQ[b, 6] = -gamma[b, 0] * (dz_nxJ @ self.log_lr_J)
      return g_nxQ

    return r_nxP, vjp
