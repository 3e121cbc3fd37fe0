"""The figures of an hparams fit, as PNG and PDF (analysis.figures.save):
- `loss_vs_lr`: each (N, D) cell's loss against the learning rate, one curve per batch size, with
  the band (method band) and the cell's optimum marked;
- `lr_optimum`, `batch_optimum`: the cells' optima against the law's first variable, the fitted
  law with its 95% band at each value of the other variables, and the published laws
  (analysis.hparam_laws.PUBLISHED) at the same values, with C = 6ND and our N counting;
- `steps_vs_batch`, `critical_batch`: a critical-batch fit's steps to target against the batch
  with each size's S = S_min (1 + B_crit/B), and the critical batch against N with its law.
"""

import math

import numpy as np
from matplotlib import ticker
from matplotlib.figure import Figure

from analysis import critical_batch as critical_batch_lib
from analysis import figures
from analysis import hparam_laws
from analysis import hparams
from analysis import intervals


def loss_vs_lr(result: hparams.HparamsFit, out_dir, name: str = 'loss_vs_lr'):
  cells, table, o = result.cells, result.grid.table, result.options
  ncols = min(3, len(cells))
  fig = Figure(figsize=(4 * ncols, 3.2 * math.ceil(len(cells) / ncols)), layout='constrained')
  for i, c in enumerate(cells.itertuples()):
    ax = fig.add_subplot(math.ceil(len(cells) / ncols), ncols, i + 1)
    runs = table[(table['N'] == c.N) & (table['D'] == c.D)]
    for batch, g in runs.groupby('batch'):
      g = g.sort_values('lr')
      ax.plot(g['lr'], g['loss'], 'o-', ms=3, label=f'{batch:g}')
    if o.optimum == 'band':
      ax.axhspan(c.loss, c.loss * (1 + o.band), color='0.85', label=f'band {o.band:g}')
    ax.axvline(c.lr, color='k', ls='--', lw=1, label=f'optimum {c.lr:.3g}')
    ax.set_xscale('log')
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.set_xlabel('peak learning rate')
    ax.set_ylabel('loss')
    ax.set_title(f'N={c.N:.3g}, D={c.D:.3g}' + (f' (edge: {c.edge})' if isinstance(c.edge, str)
                                                 else ''),
                 fontsize=9)
    ax.legend(fontsize=6, title=f'batch ({result.grid.batch_unit})', title_fontsize=6)
  return figures.save(fig, out_dir, name)


def _published_batch_scale(entry: dict, grid: hparams.Grid) -> float | None:
  """What multiplies a published batch law into our unit; None when it cannot be converted."""
  theirs, ours = entry['batch_unit'], grid.batch_unit
  tokens = 2048.0 if theirs.startswith('sequences of 2048') else 1.0 if theirs == 'tokens' else None
  if tokens is None:
    return None
  if ours == 'tokens':
    return tokens
  return tokens / grid.tokens_per_sequence if grid.tokens_per_sequence else None


def _variables_at(used, group, rest: list[str], x: str, grid_G: np.ndarray) -> dict:
  """N, D and C along grid_G in x: the law's other variables at the group's values, the rest at
  the fitted cells' geometric mean, and C = 6ND (or D = C/6N along C)."""
  at = {v: np.full_like(grid_G, np.exp(np.log(used[v]).mean())) for v in ('N', 'D', 'C')}
  at |= {v: np.full_like(grid_G, group[v].iloc[0]) for v in rest} | {x: grid_G}
  if x == 'C':
    at['D'] = at['C'] / (6 * at['N'])
  elif 'C' not in rest:
    at['C'] = 6 * at['N'] * at['D']
  return at


def optimum_vs_variable(result: hparams.HparamsFit, key: str, out_dir):
  fit, variables = getattr(result, key), getattr(result.options, f'{key}_vars')
  cells, x = result.cells, variables[0]
  unit = 'peak learning rate' if key == 'lr' else f'batch ({result.grid.batch_unit})'
  fig, ax = figures.axes(x, f'optimal {unit}')
  for fitted, style in ((True, dict(c='k')), (False, dict(facecolors='none', edgecolors='k'))):
    sel = cells[cells['fitted'] == fitted]
    ax.scatter(sel[x], sel[key], s=25, label='cells' + ('' if fitted else ' on the edge'),
               **style)
  used = cells[cells['fitted']]
  grid_G = np.geomspace(cells[x].min() / 1.5, cells[x].max() * 1.5, 100)
  rest = list(variables[1:])
  groups = [g for _, g in used.groupby(rest)] if rest else [used]
  for g in groups:
    at = _variables_at(used, g, rest, x, grid_G)
    label = ', '.join(f'{v}={g[v].iloc[0]:.3g}' for v in rest)
    line, = ax.plot(grid_G, fit.law.predict(fit.params, **at), lw=1.5,
                    label='fit' + (f' at {label}' if label else ''))
    if fit.samples:
      resampled = fit.law.predict({k: v[:, None] for k, v in fit.samples.items()}, **at)
      band = intervals.band(resampled[np.isfinite(resampled).all(1)])
      if band is not None:
        ax.fill_between(grid_G, *band, color=line.get_color(), alpha=0.15)
  at = _variables_at(used, groups[0], rest, x, grid_G)  # the published laws at the first group's
  for paper, entry in hparam_laws.PUBLISHED.items():
    scale = 1.0 if key == 'lr' else _published_batch_scale(entry, result.grid)
    if scale is not None:
      k, exps = entry[key]
      ax.plot(grid_G, scale * hparam_laws.power_product(k, exps, **at), ls=':', lw=1,
              label=f'{paper} (their counting)')
  ax.legend(fontsize=7)
  return figures.save(fig, out_dir, f'{key}_optimum')


def all_figures(result: hparams.HparamsFit, out_dir) -> None:
  loss_vs_lr(result, out_dir)
  for key in ('lr', 'batch'):
    optimum_vs_variable(result, key, out_dir)


def critical_batch_figures(result: 'critical_batch_lib.CriticalBatchFit', table, batch_unit: str,
                           out_dir) -> None:
  fig, ax = figures.axes(f'batch ({batch_unit})', 'steps to the target loss')
  B_G = np.geomspace(table['batch'].min(), table['batch'].max(), 100)
  for s in result.sizes.itertuples():
    g = table[table['N'] == s.N]
    line, = ax.plot(B_G, s.S_min * (1 + s.B_crit / B_G), lw=1)
    ax.scatter(g['batch'], g['steps'], s=12, color=line.get_color(), label=f'N={s.N:.3g}')
    ax.axvline(s.critical_batch, color=line.get_color(), ls=':', lw=1)
  ax.legend(fontsize=7, title=f'dotted: critical batch ({result.options.definition})',
            title_fontsize=7)
  figures.save(fig, out_dir, 'steps_vs_batch')
  if result.law is None:
    return
  fig, ax = figures.axes('N', f'critical batch ({batch_unit})')
  ax.scatter(result.sizes['N'], result.sizes['critical_batch'], color='k', s=20)
  N_G = np.geomspace(result.sizes['N'].min() / 1.5, result.sizes['N'].max() * 1.5, 100)
  line, = ax.plot(N_G, result.law.law.predict(result.law.params, N=N_G), label='fit')
  if result.law.samples:
    resampled = result.law.law.predict({k: v[:, None] for k, v in result.law.samples.items()},
                                       N=N_G)
    band = intervals.band(resampled)
    if band is not None:
      ax.fill_between(N_G, *band, color=line.get_color(), alpha=0.15)
  ax.legend(fontsize=7)
  figures.save(fig, out_dir, 'critical_batch')
