"""Chinchilla's Approach 1: compute-optimal N and D read off the training curves themselves.

The lower envelope of all training curves gives the best loss at each compute C and the size that
reaches it, N_opt(C); power laws N_opt ∝ C^a, D_opt ∝ C^b go through it. (Approach 2, the IsoFLOP
profiles, is analysis/approach2.py.) Rows with C <= 0, such as the step-0 eval, are dropped first.

The envelope is fair only where each point on it is the end of a schedule: WSD cooldown branches,
or several run lengths per size as Hoffmann et al. trained. Intermediate points of a cosine run
fitted to one length are read before the schedule has decayed, above the loss a run of that
length would reach, so an envelope of them favours small models; `single_length_warning` says
when the curves are like that.
"""

import dataclasses

import numpy as np
import pandas as pd

from analysis import errors
from analysis import study as study_lib


@dataclasses.dataclass
class PowerLaw:
  """y = k · x^exponent, fitted by least squares in log-log space."""
  k: float
  exponent: float


def fit_power_law(x, y) -> PowerLaw:
  slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
  return PowerLaw(k=float(np.exp(intercept)), exponent=float(slope))


def envelope(curves: pd.DataFrame, n_grid: int = 200) -> pd.DataFrame:
  """Best loss at each C over all runs (curves: run, N, C, D, loss), interpolated in log C."""
  curves = curves[(curves['C'] > 0) & (curves['D'] > 0) & np.isfinite(curves['loss'])]
  logc = np.log(curves['C'].to_numpy())
  grid_G = np.linspace(logc.min(), logc.max(), n_grid)
  loss_RxG, n_R, d_RxG = [], [], []
  for _, run in curves.sort_values('C').groupby('run', sort=False):
    lc = np.log(run['C'].to_numpy())
    inside = (grid_G >= lc.min()) & (grid_G <= lc.max())
    loss_RxG.append(np.where(inside, np.interp(grid_G, lc, run['loss'].to_numpy()), np.inf))
    d_RxG.append(np.exp(np.interp(grid_G, lc, np.log(run['D'].to_numpy()))))
    n_R.append(run['N'].iloc[0])
  loss_RxG, d_RxG = np.array(loss_RxG), np.array(d_RxG)
  best_G = np.argmin(loss_RxG, axis=0)
  cols = np.arange(n_grid)
  return pd.DataFrame({'C': np.exp(grid_G), 'loss': loss_RxG[best_G, cols],
                       'N': np.array(n_R)[best_G], 'D': d_RxG[best_G, cols]})


@dataclasses.dataclass
class Optima:
  table: pd.DataFrame  # per C (Approach 1) or per budget (Approach 2): C, N, D, loss at the optimum
  n_opt: PowerLaw
  d_opt: PowerLaw


def approach1(curves: pd.DataFrame, n_grid: int = 200) -> Optima:
  """Power laws through the envelope where its best run is neither the smallest nor the largest
  size: there the frontier is set by the sizes trained, not by the optimum."""
  curves = curves[(curves['C'] > 0) & (curves['D'] > 0) & np.isfinite(curves['loss'])]
  env = envelope(curves, n_grid)
  inner = env[(env['N'] > curves['N'].min()) & (env['N'] < curves['N'].max())]
  if inner['N'].nunique() < 2:
    raise errors.InputError('the envelope of the training curves has fewer than 2 inner sizes: '
                            'Approach 1 needs runs of at least 4 sizes whose curves overlap in C')
  return Optima(env, fit_power_law(inner['C'], inner['N']), fit_power_law(inner['C'], inner['D']))


def approach1_bootstrap(curves: pd.DataFrame, n_resamples: int, seed: int,
                        n_grid: int = 200) -> dict:
  """a and b refitted on resamples of whole runs drawn with replacement (NaN: too few sizes)."""
  rng = np.random.default_rng(seed)
  names = curves['run'].unique()
  by_run = {k: g for k, g in curves.groupby('run')}
  out = {'a': np.full(n_resamples, np.nan), 'b': np.full(n_resamples, np.nan)}
  for r in range(n_resamples):
    pick = np.unique(rng.choice(names, len(names)))  # a run drawn twice adds nothing to a minimum
    try:
      opt = approach1(pd.concat([by_run[k] for k in pick]), n_grid)
    except errors.InputError:
      continue
    out['a'][r], out['b'][r] = opt.n_opt.exponent, opt.d_opt.exponent
  return out


def single_length_warning(runs: pd.DataFrame) -> str | None:
  """A warning when the envelope would come from intermediate points of single-length runs.

  runs: one row per run with N, schedule and (for WSD branches) cluster; fair when every size has
  several run lengths (steps) or the runs are cooldown branches."""
  single = runs.groupby('N')['steps'].nunique().max() <= 1
  branches = 'cluster' in runs and (runs['cluster'] != runs['run']).any()
  schedules = set(runs.get('schedule', pd.Series(dtype=str)).dropna())
  if single and not branches and schedules - {'constant', 'wsd'}:
    return ('Approach 1 reads the envelope off intermediate points of runs with one length per '
            f'size and a {"/".join(sorted(schedules))} schedule: those points are read before the '
            'schedule decays, so they are biased towards small models; train several lengths per '
            'size or WSD cooldown branches for a fair envelope')
  return None


def curves(study: study_lib.Study) -> pd.DataFrame:
  """The eval curves of the study's runs (run, N, D, C, loss), in the fit's N and C."""
  c = study.runs.curves[study.runs.curves['run'].isin(set(study.table['run']))]
  c_col = 'C_chinchilla' if 'kaplan' not in study.units.get('C', '') else 'C_kaplan'
  n_col = 'N_nonembedding' if 'non-embedding' in study.units.get('N', '') else 'N'
  return pd.DataFrame({'run': c['run'], 'N': c[n_col], 'D': c['tokens'],
                       'C': (6 * c[n_col] * c['tokens'] if study.units.get('C') == 'C = 6ND'
                             else c[c_col]),
                       'loss': c['eval_loss']}).dropna()
