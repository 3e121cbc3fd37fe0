"""Paper-style figures, each written as NAME.png and NAME.pdf.

Figures are built on matplotlib.figure.Figure directly, so no pyplot state or backend is touched.
"""

import pathlib

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis import allocation
from analysis import laws


def save(fig: Figure, out_dir: str | pathlib.Path, name: str) -> list[pathlib.Path]:
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  paths = [out_dir / f'{name}.{ext}' for ext in ('png', 'pdf')]
  for p in paths:
    fig.savefig(p, dpi=120)
  return paths


def _axes(xlabel: str, ylabel: str, loglog: bool = True):
  fig = Figure(figsize=(6, 4.5), layout='constrained')
  ax = fig.add_subplot()
  if loglog:
    ax.set_xscale('log')
    ax.set_yscale('log')
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  return fig, ax


def _log_grid(x, n: int = 200) -> np.ndarray:
  return np.geomspace(np.min(x), np.max(x), n)


def frontier(C, loss) -> tuple[np.ndarray, np.ndarray]:
  """The compute frontier: the lowest loss reached at or below each point's compute."""
  order = np.argsort(C)
  return np.asarray(C)[order], np.minimum.accumulate(np.asarray(loss)[order])


def loss_vs_compute(table: pd.DataFrame, law: laws.Law, params: dict, out_dir,
                    name='loss_vs_compute', compute: allocation.Compute | None = None):
  """Points, frontier and the law; Chinchilla's at its compute-optimal N, D under `compute`,
  the points' own FLOP convention, so curve and points share one C axis."""
  fig, ax = _axes('training FLOPs C', 'loss')
  sc = ax.scatter(table['C'], table['loss'], c=np.log10(table['N']), s=12, cmap='viridis')
  fig.colorbar(sc, ax=ax, label='log10 N')
  ax.step(*frontier(table['C'], table['loss']), where='post', color='k', lw=1, label='frontier')
  C = _log_grid(table['C'])
  if law.name == 'chinchilla':
    ax.plot(C, allocation.optimal_loss(C, params, compute), 'r-',
            label='fit at compute-optimal N, D')
  elif law.variables == ('C',):
    ax.plot(C, law.predict(params, C=C), 'r-', label='fit')
  ax.legend()
  return save(fig, out_dir, name)


def allocation_bands(C, n_opt, d_opt, bands: dict | None, out_dir, name='optimal_allocation'):
  """N_opt and D_opt vs C; bands maps 'N' and 'D' to (low, high) arrays, e.g. 95% intervals."""
  fig, ax = _axes('training FLOPs C', 'compute-optimal value')
  for key, y, color in (('N', n_opt, 'C0'), ('D', d_opt, 'C1')):
    ax.plot(C, y, color=color, label=f'{key}_opt')
    if bands:
      ax.fill_between(C, *bands[key], color=color, alpha=0.25, label=f'{key}_opt 95% CI')
  ax.legend()
  return save(fig, out_dir, name)


def contours(table: pd.DataFrame, params: dict, out_dir, name='contours',
             compute: allocation.Compute | None = None):
  """Chinchilla Figure 4 (left) style: iso-loss contours of L(N, D(N, C)) over (C, N), data on
  top; D = C/(r(N)·N) under `compute` (None: r = 6)."""
  fig, ax = _axes('training FLOPs C', 'parameters N')
  C = np.geomspace(table['C'].min() / 3, table['C'].max() * 30, 200)
  N = np.geomspace(table['N'].min() / 3, table['N'].max() * 10, 200)
  CC, NN = np.meshgrid(C, N)
  per_token = 6 * NN if compute is None else compute.flops_per_token(NN)
  LL = laws.chinchilla(NN, CC / per_token, **params)
  ax.contour(CC, NN, LL, levels=np.quantile(table['loss'], np.linspace(0.02, 0.98, 12)),
             colors='grey', linewidths=0.6)
  sc = ax.scatter(table['C'], table['N'], c=table['loss'], s=10, cmap='viridis_r')
  fig.colorbar(sc, ax=ax, label='loss')
  ax.plot(C, allocation.optimal(C, params, compute)[0], 'b-', label='efficient frontier')
  ax.set_ylim(N[0], N[-1])
  ax.legend()
  return save(fig, out_dir, name)


def residuals(table: pd.DataFrame, predicted, out_dir, name='residuals'):
  fig, ax = _axes('training FLOPs C', 'log predicted − log observed', loglog=False)
  ax.set_xscale('log')
  r = np.log(predicted) - np.log(table['loss'])
  sc = ax.scatter(table['C'], r, c=np.log10(table['N']), s=10, cmap='viridis')
  fig.colorbar(sc, ax=ax, label='log10 N')
  ax.axhline(0, color='k', lw=0.8)
  return save(fig, out_dir, name)


def tokens_per_param(C, ratio, band, out_dir, name='tokens_per_parameter',
                     ylabel='compute-optimal tokens per parameter D/N'):
  """ylabel should say which N and what a token is (fit.json's units)."""
  fig, ax = _axes('training FLOPs C', ylabel, loglog=False)
  ax.set_xscale('log')
  ax.plot(C, ratio, 'C0-', label='D_opt / N_opt')
  if band is not None:
    ax.fill_between(C, *band, color='C0', alpha=0.25, label='95% CI')
  ax.axhline(20, color='k', ls=':', lw=0.8, label='20 tokens per parameter')
  ax.legend()
  return save(fig, out_dir, name)
