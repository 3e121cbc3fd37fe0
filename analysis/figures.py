"""Paper-style figures, each written as NAME.png and NAME.pdf: the fitted law, its allocation,
the IsoFLOP profiles of Approach 2 and N_opt against C (Porian et al.'s Figure 1).

Figures are built on matplotlib.figure.Figure directly, so no pyplot state or backend is touched.
"""

import pathlib

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis import allocation
from analysis import approach2
from analysis import intervals
from analysis import laws


def save(fig: Figure, out_dir: str | pathlib.Path, name: str) -> list[pathlib.Path]:
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  paths = [out_dir / f'{name}.{ext}' for ext in ('png', 'pdf')]
  for p in paths:
    fig.savefig(p, dpi=120)
  return paths


def axes(xlabel: str, ylabel: str, loglog: bool = True):
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
  fig, ax = axes('training FLOPs C', 'loss')
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
  fig, ax = axes('training FLOPs C', 'compute-optimal value')
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
  fig, ax = axes('training FLOPs C', 'parameters N')
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
  fig, ax = axes('training FLOPs C', 'log predicted − log observed', loglog=False)
  ax.set_xscale('log')
  r = np.log(predicted) - np.log(table['loss'])
  sc = ax.scatter(table['C'], r, c=np.log10(table['N']), s=10, cmap='viridis')
  fig.colorbar(sc, ax=ax, label='log10 N')
  ax.axhline(0, color='k', lw=0.8)
  return save(fig, out_dir, name)


def tokens_per_param(C, ratio, band, out_dir, name='tokens_per_parameter',
                     ylabel='compute-optimal tokens per parameter D/N'):
  """ylabel should say which N and what a token is (fit.json's units)."""
  fig, ax = axes('training FLOPs C', ylabel, loglog=False)
  ax.set_xscale('log')
  ax.plot(C, ratio, 'C0-', label='D_opt / N_opt')
  if band is not None:
    ax.fill_between(C, *band, color='C0', alpha=0.25, label='95% CI')
  ax.axhline(20, color='k', ls=':', lw=0.8, label='20 tokens per parameter')
  ax.legend()
  return save(fig, out_dir, name)


def law_figures(out_dir, table: pd.DataFrame, law: laws.PowerSum, params: dict,
                samples: dict | None, compute: allocation.Compute | None = None,
                units: dict | None = None) -> None:
  """Every figure that applies to this law and table."""
  loss_vs_compute(table, law, params, out_dir, compute=compute)
  residuals(table, law.predict(params, **{v: table[v].to_numpy() for v in law.variables}), out_dir)
  if law.name != 'chinchilla':
    return
  contours(table, params, out_dir, compute=compute)
  C = np.geomspace(table['C'].min(), table['C'].max() * 100, 100)
  N, D = allocation.optimal(C, params, compute)
  bands, ratio_band = None, None
  if samples:
    Ns, Ds = allocation.optimal(C[None], {k: v[:, None] for k, v in samples.items()}, compute)
    bands, ratio_band = {'N': intervals.band(Ns), 'D': intervals.band(Ds)}, intervals.band(Ds / Ns)
  allocation_bands(C, N, D, bands, out_dir)
  u = units or {'N': 'parameters', 'D': 'tokens'}
  tokens_per_param(C, D / N, ratio_band, out_dir,
                   ylabel=f'compute-optimal D/N\nD: {u["D"]}\nN: {u["N"]}')


def isoflop_profiles(result: approach2.Result, out_dir, name='isoflop'):
  """Each budget's points, the estimator's curve and its optimum (a star; hollow: left out)."""
  fig, ax = axes('parameters N', 'loss', loglog=False)
  ax.set_xscale('log')
  for i, (p, row) in enumerate(zip(result.profiles, result.optima.itertuples())):
    dots = ax.scatter(np.exp(p.logn), p.loss, s=10)
    N, fitted = result.curve(i)
    ax.plot(N, fitted, color=dots.get_facecolor()[0], label=f'C={p.C:.2g}')
    if np.isfinite(row.N):
      ax.plot(row.N, row.loss, '*', ms=9, color='k', mfc='k' if row.status == 'ok' else 'none')
  ax.set_title(f'IsoFLOP profiles, {result.settings["estimator"]} estimator', fontsize=9)
  ax.legend(fontsize=6, ncol=2)
  return save(fig, out_dir, name)


def optima_vs_compute(results: dict[str, approach2.Result], out_dir, name='n_opt_vs_compute'):
  """Porian et al.'s Figure 1 layout: each configuration's N_opt per budget and its power law."""
  fig, ax = axes('training FLOPs C', 'compute-optimal N')
  for i, (label, r) in enumerate(results.items()):
    ok = r.optima[r.optima['status'] == 'ok']
    color = f'C{i}'
    ax.scatter(ok['C'], ok['N'], s=14, color=color)
    C = np.geomspace(ok['C'].min(), ok['C'].max(), 50)
    lo, hi = r.ci95('a') or (np.nan, np.nan)
    ax.plot(C, r.k_n * C**r.a, color=color,
            label=f'{label}: a = {r.a:.3f} [{lo:.3f}, {hi:.3f}]')
  ax.legend(fontsize=7)
  return save(fig, out_dir, name)
