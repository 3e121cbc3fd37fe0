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
                    name='loss_vs_compute'):
  fig, ax = _axes('training FLOPs C', 'loss')
  sc = ax.scatter(table['C'], table['loss'], c=np.log10(table['N']), s=12, cmap='viridis')
  fig.colorbar(sc, ax=ax, label='log10 N')
  ax.step(*frontier(table['C'], table['loss']), where='post', color='k', lw=1, label='frontier')
  C = _log_grid(table['C'])
  if law.name == 'chinchilla':
    ax.plot(C, allocation.optimal_loss(C, params), 'r-', label='fit at compute-optimal N, D')
  elif law.variables == ('C',):
    ax.plot(C, law.predict(params, C=C), 'r-', label='fit')
  ax.legend()
  return save(fig, out_dir, name)


def isoflop(table: pd.DataFrame, optima: pd.DataFrame, budget_labels, out_dir, name='isoflop'):
  fig, ax = _axes('parameters N', 'loss', loglog=False)
  ax.set_xscale('log')
  for _, opt in optima.iterrows():
    g = table[np.asarray(budget_labels) == opt['budget']]
    line = ax.scatter(g['N'], g['loss'], s=10)
    u = np.log(_log_grid(g['N'], 100))
    ax.plot(np.exp(u), opt['c2'] * u**2 + opt['c1'] * u + opt['c0'], color=line.get_facecolor()[0],
            label=f'C={opt["C"]:.1e}')
    ax.plot(opt['N'], opt['loss'], 'k*', ms=8)
  ax.legend(fontsize=6)
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


def contours(table: pd.DataFrame, params: dict, out_dir, name='contours'):
  """Chinchilla Figure 4 (left) style: iso-loss contours of L(N, C/6N) over (C, N), data on top."""
  fig, ax = _axes('training FLOPs C', 'parameters N')
  C = np.geomspace(table['C'].min() / 3, table['C'].max() * 30, 200)
  N = np.geomspace(table['N'].min() / 3, table['N'].max() * 10, 200)
  CC, NN = np.meshgrid(C, N)
  LL = laws.chinchilla(NN, CC / (6 * NN), **params)
  ax.contour(CC, NN, LL, levels=np.quantile(table['loss'], np.linspace(0.02, 0.98, 12)),
             colors='grey', linewidths=0.6)
  sc = ax.scatter(table['C'], table['N'], c=table['loss'], s=10, cmap='viridis_r')
  fig.colorbar(sc, ax=ax, label='loss')
  ax.plot(C, allocation.optimal_6nd(C, **params)[0], 'b-', label='efficient frontier')
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


def tokens_per_param(C, ratio, band, out_dir, name='tokens_per_parameter'):
  fig, ax = _axes('training FLOPs C', 'compute-optimal tokens per parameter D/N', loglog=False)
  ax.set_xscale('log')
  ax.plot(C, ratio, 'C0-', label='D_opt / N_opt')
  if band is not None:
    ax.fill_between(C, *band, color='C0', alpha=0.25, label='95% CI')
  ax.axhline(20, color='k', ls=':', lw=0.8, label='20 tokens per parameter')
  ax.legend()
  return save(fig, out_dir, name)
