"""Figures of Approach 2: the IsoFLOP profiles with their optima, and N_opt against C."""

import numpy as np

from analysis import isoflop
from analysis import plots


def profiles(result: isoflop.Result, out_dir, name='isoflop'):
  """Each budget's points, the estimator's curve and its optimum (a star; hollow: left out)."""
  fig, ax = plots._axes('parameters N', 'loss', loglog=False)
  ax.set_xscale('log')
  for i, (p, row) in enumerate(zip(result.profiles, result.optima.itertuples())):
    dots = ax.scatter(np.exp(p.logn), p.loss, s=10)
    N, fitted = result.curve(i)
    ax.plot(N, fitted, color=dots.get_facecolor()[0], label=f'C={p.C:.2g}')
    if np.isfinite(row.N):
      ax.plot(row.N, row.loss, '*', ms=9, color='k', mfc='k' if row.status == 'ok' else 'none')
  ax.set_title(f'IsoFLOP profiles, {result.settings["estimator"]} estimator', fontsize=9)
  ax.legend(fontsize=6, ncol=2)
  return plots.save(fig, out_dir, name)


def optima_vs_compute(results: dict[str, isoflop.Result], out_dir, name='n_opt_vs_compute'):
  """Porian et al.'s Figure 1 layout: each configuration's N_opt per budget and its power law."""
  fig, ax = plots._axes('training FLOPs C', 'compute-optimal N')
  for i, (label, r) in enumerate(results.items()):
    ok = r.optima[r.optima['status'] == 'ok']
    color = f'C{i}'
    ax.scatter(ok['C'], ok['N'], s=14, color=color)
    C = np.geomspace(ok['C'].min(), ok['C'].max(), 50)
    lo, hi = r.ci95('a')
    ax.plot(C, r.k_n * C**r.a, color=color,
            label=f'{label}: a = {r.a:.3f} [{lo:.3f}, {hi:.3f}]')
  ax.legend(fontsize=7)
  return plots.save(fig, out_dir, name)
