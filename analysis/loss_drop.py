"""The multi-power law's loss-drop sum, Σ_{k≤t} (η_{k−1} − η_k)·G(η_k^(−γ)·S_k(t)), at many
steps t, as a short weighted sum per step.

Summed exactly, the loss drop at every step of a T-step schedule costs T²/2 terms (2.6e9 for
72,000 steps). Far from t, G changes slowly from one k to the next, so the steps k are merged
into aligned blocks, 2^l steps long at level l: the last NEAR steps before t are summed one by
one, then NEAR (or NEAR + 1) blocks of each doubling size, so that a block is at most about
1/NEAR of its distance from t. A merged block contributes its summed drop times G at its
representative: the |drop|-weighted mean of S1(k−1) and of log η_k over its steps (exact for a
block whose drop sits on one step, second order in the block's width otherwise). A block is
split until it also passes two checks: its steps' log η spread is at most SMOOTH (a warmup from 0
or a sharp drop inside a block), and its LR area is at most 1/NEAR of the area between it and t
(a cooldown that leaves little area after the block). Blocks with no drop cost nothing.

Against the exact sum (tests/test_analysis_curve_laws.py) the merged sum changes the law by
under 2e-5 nats on the schedules of Luo et al.'s data and at every step of a WSD decay to 0, with
their parameters. A point costs about (NEAR + 1)·log2(T/NEAR) terms before the splits: ~80 at
Luo et al.'s logged steps, ~120 at every step of their 72,000-step cosine.
"""

import dataclasses

import numpy as np
from scipy import sparse

# The LR raised to a negative power is floored here: a schedule that decays to 0 would give
# 0^(−γ). 1e-10 is Luo et al.'s `OPT_MIN_LR` (their src/config.py), far below any LR that trains.
LR_FLOOR = 1e-10
NEAR = 4  # steps summed one by one before each point; blocks per level beyond them
SMOOTH = 0.15  # the largest spread of log η over the steps of a merged block


@dataclasses.dataclass(frozen=True)
class DropTerms:
  """The loss-drop sum at P points as J terms: point_J says which point each term adds to."""
  point_J: np.ndarray  # int
  drop_J: np.ndarray  # Σ (η_{k−1} − η_k) over the term's steps
  log_lr_J: np.ndarray  # representative log max(η_k, LR_FLOOR)
  area_J: np.ndarray  # representative S_k(t) = S1(t) − S1(k − 1)
  n_points: int

  def total(self, value_nxJ: np.ndarray) -> np.ndarray:
    """Σ over each point's terms, for every row: (n, J) -> (n, P); (J,) -> (P,)."""
    sum_PxJ = sparse.csr_matrix((np.ones(len(self.point_J)), (self.point_J,
                                 np.arange(len(self.point_J)))), shape=(self.n_points,
                                                                         len(self.point_J)))
    return np.asarray(sum_PxJ @ np.asarray(value_nxJ).T).T


def _level_blocks(t_P: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """[lo, hi) step ranges of every point's blocks, flat: the near steps, then NEAR blocks a level.
  Every block of level l is aligned (lo a multiple of 2^l), so it can be split in halves."""
  levels = max(int(np.ceil(np.log2(max(t_P.max(), 1) + 1))), 1)
  top_PxL = np.empty((len(t_P), levels), np.int64)
  bottom_PxL = np.empty_like(top_PxL)
  top = t_P + 1
  for lev in range(levels):
    size = 1 << lev
    top_PxL[:, lev] = top
    top = bottom_PxL[:, lev] = np.maximum((top - NEAR * size) // (2 * size) * (2 * size), 0)
  size_L = 1 << np.arange(levels)
  hi_PxLxB = top_PxL[..., None] - size_L[:, None] * np.arange(NEAR + 2)
  lo_PxLxB = np.maximum(hi_PxLxB - size_L[:, None], bottom_PxL[..., None])
  keep = hi_PxLxB > lo_PxLxB
  point = np.broadcast_to(np.arange(len(t_P))[:, None, None], keep.shape)[keep]
  return point, lo_PxLxB[keep], hi_PxLxB[keep]


class _Prefix:
  """Prefix sums over steps k = 0..T for range sums, and the log-η spread of every aligned block."""

  def __init__(self, lr_T: np.ndarray):
    self.S = np.cumsum(lr_T)  # S[t] = S1(t) = Σ_{τ≤t} η_τ
    drop = np.zeros_like(lr_T)
    drop[1:] = lr_T[:-1] - lr_T[1:]
    weight = np.abs(drop)
    log_lr = np.log(np.maximum(lr_T, LR_FLOOR))
    s_before = np.concatenate([[0.0], self.S[:-1]])
    self.drop, self.weight = self._cum(drop), self._cum(weight)
    self.s_before, self.log_lr = self._cum(weight * s_before), self._cum(weight * log_lr)
    # spread_by_level[l][j]: max − min of log η over the dropping steps of block [j 2^l, (j+1) 2^l)
    # (steps without a drop do not widen it)
    lo, hi = np.where(weight > 0, log_lr, np.inf), np.where(weight > 0, log_lr, -np.inf)
    self.spread_by_level = []
    while True:
      self.spread_by_level.append(hi - lo)
      if len(lo) == 1:
        break
      pad = len(lo) % 2
      lo, hi = np.append(lo, [np.inf] * pad), np.append(hi, [-np.inf] * pad)
      lo, hi = np.minimum(lo[::2], lo[1::2]), np.maximum(hi[::2], hi[1::2])

  @staticmethod
  def _cum(x: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(x)])

  def spread(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The log-η spread of aligned blocks [lo, hi) (hi − lo a power of 2 dividing lo)."""
    level = np.log2(hi - lo).astype(int)
    out = np.empty(len(lo))
    for lev in np.flatnonzero(np.bincount(level)):
      i = level == lev
      out[i] = self.spread_by_level[lev][lo[i] >> lev]
    return out


def drop_terms(lr_T: np.ndarray, t_P: np.ndarray) -> DropTerms:
  """The merged terms of the loss drop at steps t_P (1 ≤ t ≤ T) of the per-step schedule lr_T
  (η_0 … η_T). The blocks depend on the schedule only, not on the law's parameters."""
  t_P = np.asarray(t_P, dtype=np.int64)
  pre = _Prefix(np.asarray(lr_T, dtype=float))
  point, lo, hi = _level_blocks(t_P)
  done = []
  while len(point):
    live = pre.weight[hi] > pre.weight[lo]  # blocks where the schedule never changes add nothing
    point, lo, hi = point[live], lo[live], hi[live]
    block_area = pre.S[hi - 1] - np.where(lo > 0, pre.S[lo - 1], 0.0)
    gap_area = pre.S[t_P[point]] - pre.S[hi - 1]
    fine = (hi - lo == 1) | ((NEAR * block_area <= gap_area) & (pre.spread(lo, hi) <= SMOOTH))
    done.append((point[fine], lo[fine], hi[fine]))
    split = ~fine
    mid = (lo[split] + hi[split]) // 2
    point = np.concatenate([point[split]] * 2)
    lo, hi = np.concatenate([lo[split], mid]), np.concatenate([mid, hi[split]])
  point, lo, hi = (np.concatenate(parts) for parts in zip(*done))
  weight = pre.weight[hi] - pre.weight[lo]
  return DropTerms(point_J=point, drop_J=pre.drop[hi] - pre.drop[lo],
                   log_lr_J=(pre.log_lr[hi] - pre.log_lr[lo]) / weight,
                   area_J=pre.S[t_P[point]] - (pre.s_before[hi] - pre.s_before[lo]) / weight,
                   n_points=len(t_P))
