"""The critical batch size (McCandlish et al. 2018, "An Empirical Model of Large-Batch Training";
Zhang et al. 2024, "How Does Critical Batch Size Scale in Pre-training?", arXiv:2410.21676).

From runs of one model size at several batch sizes, the steps S each takes to reach a target loss;
McCandlish et al.'s S = S_min (1 + B_crit / B) fitted to them by least squares in log S, as Zhang
et al. fit it (scipy's curve_fit on log S): `laws.PowerSum(('batch',))`, S_min + x0/B^α, with α
held at 1 (engine.Held), so x0 = S_min B_crit. Each size's critical batch under one of two
definitions, named in every result:
- `mccandlish`: B_crit itself, where a run takes 2 S_min steps and 2 E_min = 2 S_min B_crit
  examples (E = E_min (1 + B / B_crit));
- `zhang`: the batch at which the steps run `overhead` (20%) over linear scaling from a
  `reference` batch (256): S(B) = (1 + overhead) S(ref) ref / B, which under the fit is
  B = (1 + overhead) ref + overhead B_crit (their fsolve, solved in closed form).
Then the power law B = k N^β across sizes (analysis.hparam_laws, least squares in log B).

Intervals: a residual bootstrap of each size's fit (every resample keeps every batch size of the
design), and the law across sizes refitted on every resample's critical batches. On synthetic
studies of 5 sizes x 9 batches with 5% noise in the steps, the 95% intervals cover the true
exponent in 94 of 100 studies and each size's B_crit in 90% (tests/test_analysis_critical_batch.py):
with 2 parameters from 9 points, the percentile intervals of a size are somewhat narrow.
"""

import dataclasses
import json

import numpy as np
import pandas as pd

from analysis import engine
from analysis import errors
from analysis import hparam_laws
from analysis import hparams
from analysis import intervals
from analysis import laws
from analysis import objective
from analysis import points

DEFINITIONS = ('mccandlish', 'zhang')
SPEEDUP = laws.PowerSum(('batch',))  # S = E + x0 / B^α: E = S_min, and x0 = S_min B_crit at α = 1
FREE_Q = np.array([True, True, False])  # its row [log x0, log E, α]: α stays 1
MIN_BATCHES = 3


def steps_to_target(step_T, loss_T, target: float) -> float:
  """The first step at which the loss reaches `target`, linear in step between the last logged
  loss above it and the first at or below it; NaN when the curve never reaches it."""
  step_T, loss_T = np.asarray(step_T, float), np.asarray(loss_T, float)
  below = np.flatnonzero(loss_T <= target)
  if not below.size:
    return np.nan
  i = below[0]
  if i == 0:
    return float(step_T[0])
  s0, s1, l0, l1 = step_T[i - 1], step_T[i], loss_T[i - 1], loss_T[i]
  return float(s0 + (s1 - s0) * (l0 - target) / (l0 - l1))


def zhang_critical_batch(b_crit, reference: float, overhead: float):
  """The batch whose steps are (1 + overhead) x linear scaling from `reference`, under
  S = S_min (1 + B_crit / B)."""
  return (1 + overhead) * reference + overhead * np.asarray(b_crit, float)


@dataclasses.dataclass(frozen=True)
class Options:
  definition: str = 'mccandlish'
  reference: float = 256.0  # zhang: the reference batch, in the table's batch unit
  overhead: float = 0.2  # zhang: the excess over linear scaling
  bootstrap: int = 0
  seed: int = 0


def _s_min_and_b_crit(row_nxQ: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  p = SPEEDUP.named(row_nxQ)
  return p['E'], p['x0'] / p['E']


def _starts(batch_P: np.ndarray, steps_P: np.ndarray) -> np.ndarray:
  """Starts of the free row [log x0, log E] around the data's own scales: S_min near the fewest
  steps, S_min B_crit near the most steps times the smallest batch."""
  log_x0, log_e = np.log(steps_P.max() * batch_P.min()), np.log(steps_P.min())
  return np.array([[log_x0 + a, log_e + b] for a in (-2.0, 0.0, 2.0) for b in (-1.0, 0.0, 1.0)])


def fit_size(batch_P, steps_P, n_resamples: int = 0, seed: int = 0) -> dict:
  """S_min and B_crit of one size, and with n_resamples their residual-bootstrap values (NaN
  where a refit failed): log S refitted at the fit plus the fit's log residuals drawn with
  replacement, scaled by sqrt(P / (P - 2)) for the two fitted parameters."""
  batch_P, steps_P = np.asarray(batch_P, float), np.asarray(steps_P, float)
  table = pd.DataFrame({'batch': batch_P})
  residuals = SPEEDUP.residuals(table)
  prob = objective.Problem(residuals, np.log(steps_P)[None], np.ones((1, len(table))),
                           delta=hparam_laws.LEAST_SQUARES)
  held = engine.Held(prob, FREE_Q, np.array([0.0, 0.0, 1.0]))
  best = engine.fit(held, _starts(batch_P, steps_P))
  row_Q = held.full(best.x[None])[0]
  s_min, b_crit = _s_min_and_b_crit(row_Q)
  out = {'S_min': float(s_min), 'B_crit': float(b_crit), 'converged': best.converged}
  if n_resamples:
    r_P, _ = residuals(row_Q[None], np.log(steps_P)[None])  # log fitted - log observed
    fitted_P = np.log(steps_P) + r_P[0]
    scale = np.sqrt(len(r_P[0]) / (len(r_P[0]) - 2))
    draws_RxP = np.random.default_rng(seed).choice(r_P[0], (n_resamples, len(r_P[0])))
    resampled = engine.Held(objective.Problem(residuals, fitted_P - scale * draws_RxP,
                                              np.ones((1, len(table))),
                                              delta=hparam_laws.LEAST_SQUARES), FREE_Q, row_Q)
    boot = hparam_laws.refit_resamples(resampled, best.x, n_resamples)
    s_R, b_R = _s_min_and_b_crit(held.full(boot.x_RxQ))
    out['S_min_R'], out['B_crit_R'] = (np.where(boot.converged_R, v, np.nan) for v in (s_R, b_R))
  return out


def check_table(table: pd.DataFrame) -> None:
  """One InputError for a batch or step count that is not a finite number > 0 (a run that never
  reached the target has none: it is named), or a size with fewer than MIN_BATCHES batches."""
  for key in ('N', 'batch', 'steps'):
    v = table[key].to_numpy(float)
    bad = ~(np.isfinite(v) & (v > 0))
    if bad.any():
      r = table[bad].iloc[0]
      where = f' (run {r.run})' if 'run' in table else ''
      raise errors.InputError(f'{key}: {r[key]} at N={r.N:.4g}, batch={r.batch:g}{where}: every N, '
                              'batch and step count must be a finite number > 0; a run that '
                              'never reaches the target loss has no steps: raise the target '
                              'or drop the run')
  for N, g in table.groupby('N'):
    if g['batch'].nunique() < MIN_BATCHES:
      raise errors.InputError(f'N={N:.4g} has {g["batch"].nunique()} batch sizes: the fit of '
                              f'S = S_min (1 + B_crit/B) needs {MIN_BATCHES} or more')


@dataclasses.dataclass
class CriticalBatchFit:
  options: Options
  sizes: pd.DataFrame  # one row per N: S_min, B_crit, critical_batch, converged
  resampled: np.ndarray | None  # R x sizes: each resample's critical batches
  law: engine.LawFit | None  # critical_batch = k N^β; None with one size


def critical_batch(b_crit, options: Options):
  if options.definition == 'zhang':
    return zhang_critical_batch(b_crit, options.reference, options.overhead)
  return np.asarray(b_crit, float)


def fit(table: pd.DataFrame, options: Options) -> CriticalBatchFit:
  """`table`: N, batch, steps (to the target loss), one row per run."""
  check_table(table)
  rows, resampled = [], []
  for i, (N, g) in enumerate(table.groupby('N')):
    found = fit_size(g['batch'], g['steps'], options.bootstrap, options.seed + i)
    rows.append({'N': N, 'S_min': found['S_min'], 'B_crit': found['B_crit'],
                 'critical_batch': float(critical_batch(found['B_crit'], options)),
                 'E_min': found['S_min'] * found['B_crit'], 'converged': found['converged']})
    if options.bootstrap:
      resampled.append(critical_batch(found['B_crit_R'], options))
  sizes = pd.DataFrame(rows)
  cbs_RxS = np.stack(resampled, 1) if resampled else None
  law = None
  if len(sizes) >= 2:
    law = hparam_laws.fit(hparam_laws.PowerProduct.on(sizes, ('N',)), sizes, 'critical_batch',
                          target_RxP=cbs_RxS)
  return CriticalBatchFit(options, sizes, cbs_RxS, law)


def steps_table(grid: hparams.Grid, target: float | None = None,
                loss: str = 'eval_loss') -> tuple[pd.DataFrame, dict[float, float]]:
  """N, batch and steps to the target loss of every run of a grid read from runs, from each
  run's `loss` curve; and the target of each size: `target`, or by default the highest final
  loss among that size's runs (so that every run reaches it)."""
  t, curves = grid.table, grid.runs.curves
  targets = {N: target or float(g['loss'].max()) for N, g in t.groupby('N')}
  steps = []
  for r in t.itertuples():
    curve = curves[(curves['run'] == r.run) & curves[loss].notna()].sort_values('step')
    steps.append(steps_to_target(curve['step'], curve[loss], targets[r.N]))
  return t[['run', 'N', 'batch']].assign(steps=steps), targets


def csv_table(path, columns: str = '', batch_unit: str | None = None) -> tuple[pd.DataFrame, str]:
  """A CSV of N, batch and steps (`--columns N=<col>,batch=<col>,steps=<col>`), and the unit of
  its batch (`batch_unit`, or the column's name)."""
  raw = points.read_csv(path)
  names = {'N': 'N', 'batch': 'batch', 'steps': 'steps'}
  for item in filter(None, (s.strip() for s in columns.split(','))):
    key, _, col = item.partition('=')
    if key.strip() not in names or not col.strip():
      raise errors.InputError(f'bad --columns entry {item!r}: use KEY=<column> with KEY one of '
                              'N, batch, steps')
    names[key.strip()] = col.strip()
  missing = [f'{k} (column {c!r})' for k, c in names.items() if c not in raw.columns]
  if missing:
    raise errors.InputError(f'{path} has no {", ".join(missing)}: map them with --columns '
                            f'N=<col>,batch=<col>,steps=<col> (columns: {", ".join(raw.columns)})')
  table = pd.DataFrame({k: pd.to_numeric(raw[c], errors='coerce').astype(float)
                        for k, c in names.items()})
  return table, batch_unit or hparams.batch_unit_of(names['batch'])


def to_json(result: CriticalBatchFit, batch_unit: str, targets: dict | None) -> dict:
  """fit.json of --law=critical_batch (keys added, never renamed)."""
  o, sizes = result.options, result.sizes.copy()
  if result.resampled is not None:
    sizes['ci95'] = [intervals.ci95(c) for c in result.resampled.T]
  if targets:
    sizes['target_loss'] = sizes['N'].map(targets)
  out = {'definition': o.definition, 'batch_unit': batch_unit,
         'objective': hparam_laws.OBJECTIVE, 'sizes': json.loads(sizes.to_json(orient='records'))}
  if o.definition == 'zhang':
    out |= {'reference_batch': o.reference, 'overhead': o.overhead}
  if result.law is not None:
    samples = result.law.samples or {}
    out['law'] = {'coefficient': result.law.params['coefficient'],
                  'exponent': result.law.params['N'], 'converged': result.law.best.converged,
                  'ci95': {'coefficient': intervals.ci95(samples['coefficient']) if samples else
                           None, 'exponent': intervals.ci95(samples['N']) if samples else None}}
  if o.bootstrap:
    out['bootstrap'] = {'resamples': o.bootstrap, 'seed': o.seed,
                        'resampled': 'each size\'s log residuals (residual bootstrap)'}
  converged = bool(sizes['converged'].all()) and (result.law is None or
                                                  result.law.best.converged)
  return {'law': 'critical_batch', 'converged': converged, 'critical_batch': out}


def lines(fit_json: dict) -> list[str]:
  c = fit_json['critical_batch']
  name = ('B_crit (McCandlish: S = S_min (1 + B_crit/B))' if c['definition'] == 'mccandlish' else
          f'the batch {c["overhead"]:.0%} over linear scaling from {c["reference_batch"]:g} '
          '(Zhang et al.)')
  out = [f'critical batch = {name}, in {c["batch_unit"]}',
         f'{"N":>12}{"S_min":>12}{"B_crit":>12}{"critical":>12}  95% CI']
  for s in c['sizes']:
    ci = s.get('ci95')
    out.append(f'{s["N"]:>12.4g}{s["S_min"]:>12.5g}{s["B_crit"]:>12.5g}'
               f'{s["critical_batch"]:>12.5g}  ' +
               (f'[{ci[0]:.5g}, {ci[1]:.5g}]' if ci else 'no interval'))
  if 'law' in c:
    law, ci = c['law'], c['law']['ci95']['exponent']
    out.append(f'critical batch = {law["coefficient"]:.4g} · N^{law["exponent"]:.4f}' +
               (f'  (exponent 95% CI [{ci[0]:.4f}, {ci[1]:.4f}])' if ci else ''))
  return out
