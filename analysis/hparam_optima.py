"""The optimal learning rate and batch size of each (N, D) cell of a grid of runs, two ways, and
the resamples of runs within cells behind the laws' intervals.

- `band` (Step Law, Li et al. 2025; DeepSeek LLM 2024 §3.1): every run within `band` (relative)
  of its cell's best loss is near-optimal, and each is a point of the fit; the cell's optimum,
  reported and drawn, is their geometric mean.
- `interp` (Porian et al. 2024 §4, their `minimize_with_interp`): for each batch size, Akima
  interpolation of log loss over log LR on 100 points and its argmin; then the same over log batch
  of those minima, and the LR at the chosen batch interpolated likewise. One point per cell.

A cell is on the edge when its optimum may lie outside its grid: (band) its best run has the
cell's smallest or largest LR or batch; (interp) an argmin falls in an outer interval of its grid,
Porian et al.'s rule. Edge cells stay out of the fit unless asked for.

The resamples draw each cell's runs with replacement (multinomial counts), so a cell keeps its
size and its grid, and the whole selection (best run, band, interpolation) is redone on them.
"""

import dataclasses

import numpy as np
import pandas as pd
from scipy import interpolate

METHODS = ('band', 'interp')
INTERP_POINTS = 100  # Porian et al.'s interp_num
CELL = ['N', 'D']


@dataclasses.dataclass(frozen=True)
class Optimum:
  lr: float
  batch: float
  loss: float  # the best run's loss (band) or the interpolated minimum (interp)
  edge: str | None  # 'lr', 'batch', 'lr, batch' or None
  near_R: np.ndarray | None = None  # band: which of the cell's runs are near-optimal


def _edge(lr_on_edge: bool, batch_on_edge: bool) -> str | None:
  return ', '.join(k for k, on in (('lr', lr_on_edge), ('batch', batch_on_edge)) if on) or None


def near_optimal(loss_K, band: float, count_RxK: np.ndarray) -> np.ndarray:
  """R×K: which runs of a cell are near-optimal in each of R draws of them (counts > 0 drawn): a
  loss at most the draw's best x (1 + band)."""
  loss_RxK = np.where(count_RxK > 0, np.asarray(loss_K, float), np.inf)
  return loss_RxK <= loss_RxK.min(1, keepdims=True) * (1 + band)


def band_optimum(lr_K, batch_K, loss_K, band: float) -> Optimum:
  """The near-optimal runs, their geometric mean LR and batch, and the best run's edge flag."""
  lr_K, batch_K, loss_K = (np.asarray(a, float) for a in (lr_K, batch_K, loss_K))
  near_K = near_optimal(loss_K, band, np.ones((1, len(loss_K))))[0]
  best = int(np.argmin(loss_K))
  edge = _edge(lr_K[best] in (lr_K.min(), lr_K.max()), batch_K[best] in (batch_K.min(),
                                                                          batch_K.max()))
  return Optimum(float(np.exp(np.log(lr_K[near_K]).mean())),
                 float(np.exp(np.log(batch_K[near_K]).mean())), float(loss_K[best]), edge, near_K)


def _akima_argmin(x_G: np.ndarray, logy_G: np.ndarray) -> tuple[float, float, bool]:
  """(argmin x, min log y, on an outer interval) of the Akima curve through (log x, log y)."""
  logx_G = np.log(x_G)
  fine_F = np.linspace(logx_G.min(), logx_G.max(), INTERP_POINTS)
  curve_F = interpolate.Akima1DInterpolator(logx_G, logy_G)(fine_F)
  i = int(np.argmin(curve_F))
  outer = len(x_G) < 3 or not logx_G[1] <= fine_F[i] <= logx_G[-2]
  return float(np.exp(fine_F[i])), float(curve_F[i]), outer


def interp_optimum(lr_R, batch_R, loss_R) -> Optimum:
  """Porian et al.'s two interpolations; NaN where a batch has fewer than 2 LRs (or < 2 batches).

  Duplicated (lr, batch) runs keep their lowest loss, as their groupby-min does."""
  df = pd.DataFrame({'lr': lr_R, 'batch': batch_R, 'loss': loss_R})
  df = df.groupby(['batch', 'lr'], as_index=False)['loss'].min()
  per_batch = []
  for batch, g in df.groupby('batch'):
    if len(g) >= 2:
      per_batch.append((batch, *_akima_argmin(g['lr'].to_numpy(), np.log(g['loss'].to_numpy()))))
  if len(per_batch) < 2:
    return Optimum(np.nan, np.nan, np.nan, 'lr, batch')
  b_G, lr_G, log_loss_G, outer_G = (np.array(v) for v in zip(*per_batch))
  batch, log_loss, batch_edge = _akima_argmin(b_G, log_loss_G)
  lr = float(np.exp(interpolate.Akima1DInterpolator(np.log(b_G), np.log(lr_G))(np.log(batch))))
  lr_edge = bool(outer_G[np.argmin(np.abs(np.log(b_G / batch)))])  # at the batch nearest
  return Optimum(lr, batch, float(np.exp(log_loss)), _edge(lr_edge, batch_edge))


def optimum(method: str, lr_K, batch_K, loss_K, band: float) -> Optimum:
  if method == 'band':
    return band_optimum(lr_K, batch_K, loss_K, band)
  return interp_optimum(lr_K, batch_K, loss_K)


@dataclasses.dataclass
class Resamples:
  """R resamples of the runs within each cell, and what the fit sees in each: per point (a run for
  `band`, a cell for `interp`) its LR and batch targets and its weight."""
  lr_RxP: np.ndarray | None  # None: each point's own LR (band)
  batch_RxP: np.ndarray | None
  weight_RxP: np.ndarray


def resample(table: pd.DataFrame, cell_P: np.ndarray, method: str, band: float,
             n_resamples: int, seed: int) -> Resamples:
  """`table` holds the runs of the fitted cells (lr, batch, loss) and their `cell` labels; for
  `interp`, cell_P lists the cells in the fit's point order (for `band` the points are the runs)."""
  rng = np.random.default_rng(seed)
  weight_RxP = np.zeros((n_resamples, len(table) if method == 'band' else len(cell_P)))
  lr_RxP, batch_RxP = np.full_like(weight_RxP, np.nan), np.full_like(weight_RxP, np.nan)
  for cell, rows in table.groupby('cell').indices.items():
    runs = table.iloc[rows]
    count_RxK = rng.multinomial(len(rows), np.full(len(rows), 1 / len(rows)), size=n_resamples)
    if method == 'band':
      weight_RxP[:, rows] = count_RxK * near_optimal(runs['loss'], band, count_RxK)
      continue
    k = int(np.flatnonzero(cell_P == cell)[0])
    for r, count_K in enumerate(count_RxK):
      drawn = runs[count_K > 0]  # a run drawn twice measures nothing new to an interpolation
      found = interp_optimum(drawn['lr'], drawn['batch'], drawn['loss'])
      lr_RxP[r, k], batch_RxP[r, k] = found.lr, found.batch
  if method == 'band':
    return Resamples(None, None, weight_RxP)
  return Resamples(lr_RxP, batch_RxP, np.ones_like(lr_RxP))
