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

How the terms are found without splitting per point (at every step, a per-point loop over ~9M
blocks was what cost seconds): with the points sorted by step, every aligned block is a term at
one contiguous range of points. The level boundaries only rise with t, so a block is one of the
points' initial blocks over a range of points, after which it lies inside a larger initial
block; that block's split reaches it while its parent fails the area check, which happens before
a threshold point (the area after a block only grows with t; a check a block passes, its halves
pass). So the area splits give each block one range of points. The spread check does not depend
on the point: a block that fails it becomes the largest blocks under it that pass (the check's
frontier, found once per schedule). Letters: P points, L levels, B blocks of a level, F frontier
blocks, K (block, point range) pairs, J terms.
"""

import dataclasses
import functools

import numpy as np

# The LR raised to a negative power is floored here: a schedule that decays to 0 would give
# 0^(−γ). 1e-10 is Luo et al.'s `OPT_MIN_LR` (their src/config.py), far below any LR that trains.
LR_FLOOR = 1e-10
NEAR = 4  # steps summed one by one before each point; blocks per level beyond them
SMOOTH = 0.15  # the largest spread of log η over the steps of a merged block
RUN_TERMS = 1 << 16  # terms summed together by DropTerms.drop_sum: their arrays stay in cache


@dataclasses.dataclass(frozen=True)
class DropTerms:
  """The loss-drop sum at P points as J terms, kept as K pairs (a merged block, a run of points):
  pair k adds one term to each of count_K[k] consecutive points of the points sorted by step,
  from start_K[k] on. The flat terms (point_J says which point each adds to) are built when first
  read; `drop_sum` sums the law from the pairs instead, a cache-sized run of terms at a time."""
  n_points: int
  order_P: np.ndarray  # the points' indices sorted by step (stable)
  area_P: np.ndarray  # S1(t) at the sorted points
  start_K: np.ndarray  # int, ascending
  count_K: np.ndarray  # int
  drop_K: np.ndarray  # Σ (η_{k−1} − η_k) over the block's steps
  log_lr_K: np.ndarray  # representative log max(η_k, LR_FLOOR)
  before_K: np.ndarray  # representative S1(k − 1): a term's area is S1(t) minus it

  @functools.cached_property
  def _sorted_J(self) -> np.ndarray:
    return _ragged_arange(self.start_K, self.count_K)

  @functools.cached_property
  def point_J(self) -> np.ndarray:
    return self.order_P[self._sorted_J]

  @functools.cached_property
  def drop_J(self) -> np.ndarray:
    return np.repeat(self.drop_K, self.count_K)

  @functools.cached_property
  def log_lr_J(self) -> np.ndarray:
    return np.repeat(self.log_lr_K, self.count_K)

  @functools.cached_property
  def area_J(self) -> np.ndarray:  # representative S_k(t) = S1(t) − S1(k − 1)
    return self.area_P[self._sorted_J] - np.repeat(self.before_K, self.count_K)

  def total(self, value_nxJ: np.ndarray) -> np.ndarray:
    """Σ over each point's terms, for every row: (n, J) -> (n, P); (J,) -> (P,)."""
    value_nxJ = np.asarray(value_nxJ, dtype=float)
    rows_RxJ = value_nxJ.reshape(-1, value_nxJ.shape[-1])
    out_RxP = np.zeros((len(rows_RxJ), self.n_points))
    for r, row_J in enumerate(rows_RxJ):
      out_RxP[r] = np.bincount(self.point_J, weights=row_J, minlength=self.n_points)
    return out_RxP.reshape(value_nxJ.shape[:-1] + (self.n_points,))

  def drop_sum(self, C, beta, gamma) -> np.ndarray:
    """Σ over each point's terms of drop·G(η^(−γ)·S), G(x) = 1 − (C·x + 1)^(−β): (P,), or
    (n, P) for parameters of shape (n, 1). Each term is computed as the flat terms would give it,
    bit for bit. A run's arrays stay in cache: at every step of a long schedule the flat terms
    (~10M) went to memory and back once per operation, which cost more than the arithmetic."""
    lead = np.broadcast_shapes(np.shape(C), np.shape(beta), np.shape(gamma), (1,))[:-1]
    rows = int(np.prod(lead))
    C_R1, beta_R1, gamma_R1 = (np.broadcast_to(np.asarray(v, float), lead + (1,)).reshape(rows, 1)
                               for v in (C, beta, gamma))
    with np.errstate(over='ignore'):  # η^(−γ) past 1e308: G is 1, as it is well before
      scale_RxK = np.exp(-np.multiply(gamma_R1, self.log_lr_K))
    end_K = np.cumsum(self.count_K)
    run = max(RUN_TERMS // rows, 1)
    cuts = np.unique(np.concatenate([[0], np.searchsorted(end_K, np.arange(
        run, end_K[-1] if len(end_K) else 0, run), 'right'), [len(end_K)]]))
    sum_RxP = np.zeros((rows, self.n_points))
    for k0, k1 in zip(cuts[:-1], cuts[1:]):
      self._add_run(slice(k0, k1), scale_RxK, C_R1, beta_R1, sum_RxP)
    out_RxP = np.empty_like(sum_RxP)
    out_RxP[:, self.order_P] = -sum_RxP
    return out_RxP.reshape(lead + (self.n_points,))

  def _add_run(self, k: slice, scale_RxK, C_R1, beta_R1, sum_RxP: np.ndarray) -> None:
    """Adds −drop·G of pairs k to the sorted points; with pairs in order of start, the run's
    points lie within about its own number of terms from its first."""
    count_k, first = self.count_K[k], self.start_K[k][0]
    local_j = _ragged_arange(self.start_K[k] - first, count_k)
    area_j = self.area_P[first:][local_j] - np.repeat(self.before_K[k], count_k)
    x_Rxj = np.repeat(scale_RxK[:, k], count_k, axis=1)
    with np.errstate(over='ignore'):
      x_Rxj *= area_j
    np.multiply(C_R1, x_Rxj, out=x_Rxj)
    np.log1p(x_Rxj, out=x_Rxj)
    np.multiply(np.negative(beta_R1), x_Rxj, out=x_Rxj)
    np.expm1(x_Rxj, out=x_Rxj)  # −G = (C x + 1)^(−β) − 1
    x_Rxj *= np.repeat(self.drop_K[k], count_k)
    for r, x_j in enumerate(x_Rxj):
      part = np.bincount(local_j, weights=x_j)
      sum_RxP[r, first:first + len(part)] += part


class _Prefix:
  """Prefix sums over steps k = 0..T for range sums, and which aligned blocks pass the spread
  check."""

  def __init__(self, lr_T: np.ndarray):
    self.S = np.cumsum(lr_T)  # S[t] = S1(t) = Σ_{τ≤t} η_τ
    self.S0 = self._cum(lr_T)  # S0[k] = S1(k − 1): the area before step k
    drop = np.zeros_like(lr_T)
    drop[1:] = lr_T[:-1] - lr_T[1:]
    weight = np.abs(drop)
    log_lr = np.log(np.maximum(lr_T, LR_FLOOR))
    s_before = np.concatenate([[0.0], self.S[:-1]])
    self.drop, self.weight = self._cum(drop), self._cum(weight)
    self.s_before, self.log_lr = self._cum(weight * s_before), self._cum(weight * log_lr)
    # smooth_by_level[l][j]: block [j 2^l, (j+1) 2^l) has a log η spread ≤ SMOOTH over its
    # dropping steps (steps without a drop do not widen it)
    lo, hi = np.where(weight > 0, log_lr, np.inf), np.where(weight > 0, log_lr, -np.inf)
    self.smooth_by_level = []
    while True:
      self.smooth_by_level.append(hi - lo <= SMOOTH)
      if len(lo) == 1:
        break
      pad = len(lo) % 2
      lo, hi = np.append(lo, [np.inf] * pad), np.append(hi, [-np.inf] * pad)
      lo, hi = np.minimum(lo[::2], lo[1::2]), np.maximum(hi[::2], hi[1::2])

  @staticmethod
  def _cum(x: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(x)])

  def live(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Blocks where the schedule changes: the others add nothing."""
    return self.weight[hi] > self.weight[lo]

  def frontier(self) -> tuple[np.ndarray, np.ndarray]:
    """[lo, hi) of the live blocks that pass the spread check under a parent that fails it,
    by lo: they tile the steps, and a failing block splits into those inside it."""
    lo_F, hi_F = [], []
    for lev, smooth_B in enumerate(self.smooth_by_level):
      above = self.smooth_by_level[lev + 1] if lev + 1 < len(self.smooth_by_level) else [False]
      j_B = np.flatnonzero(smooth_B & ~np.asarray(above)[np.arange(len(smooth_B)) >> 1])
      lo_F.append(j_B << lev)
      hi_F.append(np.minimum((j_B + 1) << lev, len(self.S)))  # the last block may pass T
    lo_F, hi_F = np.concatenate(lo_F), np.concatenate(hi_F)
    keep = self.live(lo_F, hi_F)
    by_lo = np.argsort(lo_F[keep])
    return lo_F[keep][by_lo], hi_F[keep][by_lo]


def _level_bounds(t_P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Each point's level-l blocks tile [bottom, top): the near steps at l = 0, then NEAR (or
  NEAR + 1) blocks a level. top is a multiple of 2^l and bottom of 2^(l+1): every block is aligned
  (lo a multiple of 2^l), so it can be split in halves. Both rise with t."""
  levels = max(int(np.ceil(np.log2(max(t_P.max(), 1) + 1))), 1)
  top_LxP = np.empty((levels, len(t_P)), np.int64)
  bottom_LxP = np.empty_like(top_LxP)
  top = t_P + 1
  for lev in range(levels):
    size = 1 << lev
    top_LxP[lev] = top
    top = bottom_LxP[lev] = np.maximum((top - NEAR * size) // (2 * size) * (2 * size), 0)
  return top_LxP, bottom_LxP


def _area_passes_from(pre: _Prefix, S_P: np.ndarray, lo_B: np.ndarray,
                      hi_B: np.ndarray) -> np.ndarray:
  """The first sorted point at which each block passes the area check NEAR·area ≤ S1(t) −
  S1(hi − 1), the check evaluated in the same floating point as a point-by-point loop would."""
  need_B, before_B = NEAR * (pre.S0[hi_B] - pre.S0[lo_B]), pre.S0[hi_B]
  passes = lambda s_B: s_B - before_B >= need_B  # monotone in s, as rounded subtraction is
  q_B = np.searchsorted(S_P, before_B + need_B)
  while True:  # the sum's rounding can put the search a few equal-area points off
    back = (q_B > 0) & passes(S_P[np.maximum(q_B - 1, 0)])
    ahead = (q_B < len(S_P)) & ~passes(S_P[np.minimum(q_B, len(S_P) - 1)])
    if not (back.any() or ahead.any()):
      return q_B
    q_B[back] = np.searchsorted(S_P, S_P[q_B[back] - 1], 'left')
    q_B[ahead] = np.searchsorted(S_P, S_P[q_B[ahead]], 'right')


def _area_blocks(pre: _Prefix, t_P: np.ndarray) -> tuple[np.ndarray, ...]:
  """The live blocks left by the area splits alone, with the range [s, e) of the sorted points
  t_P at which each is, and whether it passes the spread check. A level-l block is one of the
  points' own from `first` (its top reaches hi) to `last` (its bottom rises past lo), and inside a
  larger initial block after that, reached by the splits while its parent fails the area check
  (before the parent's threshold; its ancestors fail then too)."""
  top_LxP, bottom_LxP = _level_bounds(t_P)
  S_P = pre.S[t_P]
  parts = []
  q_above = np.zeros(1, np.int64)  # above the top level: no block, so nothing reached by a split
  for lev in reversed(range(len(top_LxP))):
    j_B = np.arange((t_P[-1] + 1) >> lev)
    lo_B, hi_B = j_B << lev, (j_B + 1) << lev
    first_B = np.searchsorted(top_LxP[lev], hi_B)
    last_B = np.searchsorted(bottom_LxP[lev], lo_B, 'right')
    q_B = _area_passes_from(pre, S_P, lo_B, hi_B) if lev else first_B  # a lone step is final
    s_B = np.maximum(first_B, q_B)
    # a parent past the last point's steps (the appended 0) is never a block: never split
    e_B = np.maximum(last_B, np.append(q_above, 0)[j_B >> 1])
    keep = (s_B < e_B) & pre.live(lo_B, hi_B)
    parts.append((lo_B[keep], hi_B[keep], s_B[keep], e_B[keep],
                  pre.smooth_by_level[lev][j_B[keep]]))
    q_above = q_B
  return tuple(np.concatenate(p) for p in zip(*parts))


def _ragged_arange(start_K: np.ndarray, n_K: np.ndarray) -> np.ndarray:
  """start_K[k], start_K[k] + 1, … (n_K[k] values), for every k in turn."""
  end_K = np.cumsum(n_K)
  out = np.arange(end_K[-1] if len(end_K) else 0, dtype=np.int64)
  out += np.repeat(start_K - (end_K - n_K), n_K)
  return out


def _pairs(pre: _Prefix, t_P: np.ndarray) -> tuple[np.ndarray, ...]:
  """[lo, hi) and the sorted points' range [s, e) of every term block: a block that fails the
  spread check replaced by the frontier blocks inside it."""
  lo_B, hi_B, s_B, e_B, smooth_B = _area_blocks(pre, t_P)
  lo_F, hi_F = pre.frontier()
  rough = ~smooth_B
  first_B = np.searchsorted(lo_F, lo_B[rough])
  n_B = np.searchsorted(lo_F, hi_B[rough]) - first_B
  f_K = _ragged_arange(first_B, n_B)
  return (np.concatenate([lo_B[smooth_B], lo_F[f_K]]), np.concatenate([hi_B[smooth_B], hi_F[f_K]]),
          np.concatenate([s_B[smooth_B], np.repeat(s_B[rough], n_B)]),
          np.concatenate([e_B[smooth_B], np.repeat(e_B[rough], n_B)]))


def drop_terms(lr_T: np.ndarray, t_P: np.ndarray) -> DropTerms:
  """The merged terms of the loss drop at steps t_P (1 ≤ t ≤ T) of the per-step schedule lr_T
  (η_0 … η_T). The blocks depend on the schedule only, not on the law's parameters."""
  t_P = np.asarray(t_P, dtype=np.int64)
  pre = _Prefix(np.asarray(lr_T, dtype=float))
  order_P = np.argsort(t_P, kind='stable')
  t_sorted_P = t_P[order_P]
  lo_K, hi_K, start_K, end_K = _pairs(pre, t_sorted_P)
  by_start = np.argsort(start_K, kind='stable')  # a run of pairs then covers few points
  lo_K, hi_K, start_K, end_K = lo_K[by_start], hi_K[by_start], start_K[by_start], end_K[by_start]
  weight_K = pre.weight[hi_K] - pre.weight[lo_K]
  return DropTerms(n_points=len(t_P), order_P=order_P, area_P=pre.S[t_sorted_P],
                   start_K=start_K, count_K=end_K - start_K,
                   drop_K=pre.drop[hi_K] - pre.drop[lo_K],
                   log_lr_K=(pre.log_lr[hi_K] - pre.log_lr[lo_K]) / weight_K,
                   before_K=(pre.s_before[hi_K] - pre.s_before[lo_K]) / weight_K)
