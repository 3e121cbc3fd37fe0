"""The full analysis of a Chinchilla or power law on a study: the fit with its bootstrap, the
allocation at a budget, the backtest, Chinchilla's three approaches; fit.json, the figures and the
printed summary. analysis.fit and the quickstart both run it:

  results = analyse(study, laws.CHINCHILLA, Options(bootstrap=200, at_flops=1e12))
  wrote = results.write(out); print('\\n'.join(results.lines() + [wrote]))
"""

import dataclasses
import pathlib
import warnings

import pandas as pd

from analysis import allocation
from analysis import approach2
from analysis import approaches
from analysis import backtest
from analysis import engine
from analysis import errors
from analysis import figures
from analysis import fitjson
from analysis import isoflop
from analysis import laws
from analysis import intervals
from analysis import outdir
from analysis import study as study_lib

MIN_CONVERGED_SHARE = 0.95


@dataclasses.dataclass(frozen=True)
class Options:
  bootstrap: int = 0  # resamples
  cold_share: float = 0.1  # share of them also refitted from the whole grid
  seed: int = 0
  isoflop: str | None = None  # Approach 2's estimator; None: the default, and no budgets is no error
  isoflop_resampling: str = 'auto'  # approach2.noise_for
  at_flops: float | None = None
  backtest: float | None = None  # C_cut


@dataclasses.dataclass
class Results:
  study: study_lib.Study
  fit: engine.LawFit
  json: dict  # fit.json
  rows: list[approaches.Row]
  isoflop: approach2.Result | None
  held: pd.DataFrame | None  # the backtest's held-out points
  options: Options

  def write(self, out: pathlib.Path) -> str:
    """fit.json, bootstrap.csv, backtest.csv and the figures, all at once (outdir.Staged); the
    line that says so."""
    law, samples = self.fit.law, self.fit.samples
    with outdir.Staged(out) as stage:
      figures.law_figures(stage, self.study.table, law, self.fit.params, samples,
                          fitjson.compute_of(self.json), self.json['units'])
      if samples:
        pd.DataFrame(samples).to_csv(stage / 'bootstrap.csv', index=False)
      if self.held is not None:
        self.held.to_csv(stage / 'backtest.csv', index=False)
      if self.isoflop is not None:
        figures.isoflop_profiles(self.isoflop, stage)
      outdir.write_json(stage / 'fit.json', self.json)
    return f'wrote {out}/fit.json' + (' and bootstrap.csv' if samples else '') + ' and plots'

  def lines(self) -> list[str]:
    """The printed summary: parameters and derived quantities with their intervals, residuals
    beside the eval noise, the three approaches, the bootstrap's bookkeeping, the backtest."""
    out = _fit_lines(self.json, self.fit.samples, self.options.at_flops)
    out += approaches.lines(self.rows)
    if 'bootstrap' in self.json:
      out.append(_bootstrap_line(self.json['bootstrap']))
    if self.held is not None:
      out += _backtest_lines(self.held, self.options.backtest)
    return out


def _approach2(study: study_lib.Study, o: Options) -> tuple[approaches.Row, approach2.Result | None]:
  """Approach 2; without o.isoflop, a table without usable budgets is a row that does not apply."""
  try:
    noise, note = approach2.noise_for(study.table, o.isoflop_resampling)
    result = approach2.approach2(study.table, o.isoflop or isoflop.ESTIMATORS[0],
                                 o.bootstrap if o.bootstrap >= 2 else approach2.N_RESAMPLES,
                                 o.seed, noise, strict=o.isoflop is not None)
  except errors.InputError as e:
    if o.isoflop or o.isoflop_resampling != 'auto':
      raise
    return approaches.Row(2, why_not=str(e)), None
  notes = result.warnings + ([note] if note else [])
  for line in notes:
    warnings.warn(f'Approach 2: {line}', stacklevel=3)
  return approaches.approach2_row(result, notes), result


def _at_flops(study: study_lib.Study, fit: engine.LawFit, result: dict, C: float) -> dict:
  """fit.json's at_flops, after refusing a budget below the smallest model fitted."""
  far = allocation.within_reason(C, result['params'], fitjson.compute_of(result),
                                 study.fitted_range(), f'--at-flops={C:.3g}')
  if far:
    warnings.warn(far, stacklevel=3)
  return {**fitjson.at_flops_json(result, fit.samples, C), **({'warning': far} if far else {})}


def _warn_unconverged(result: dict) -> None:
  if not result['converged']:
    warnings.warn('the fit did not converge (no start met a stopping rule at a stationary '
                  'point); fit.json says converged: false, and analysis.plan refuses it',
                  stacklevel=3)
  b = result.get('bootstrap')
  if b and b['converged'] < MIN_CONVERGED_SHARE * b['resamples']:
    warnings.warn(f'only {b["converged"]} of {b["resamples"]} bootstrap resamples converged '
                  '(< 95%): the intervals are from the converged ones and may be too narrow',
                  stacklevel=3)


def analyse(study: study_lib.Study, law: laws.PowerSum, o: Options) -> Results:
  """Everything analysis.fit computes for a PowerSum law, before anything is written."""
  study.check(law)
  if study.mixed:
    warnings.warn(f'fitting runs that mix {"; ".join(study.mixed)} (--allow-mixed)', stacklevel=2)
  row2, iso = _approach2(study, o)  # before the slow fit, so that bad budgets fail fast
  fit = study.fit(law, o.bootstrap, o.cold_share, o.seed)
  result = fitjson.law_json(study, fit)
  if o.at_flops and law.name == 'chinchilla':
    result['at_flops'] = _at_flops(study, fit, result, o.at_flops)
  held = backtest.backtest(study.table, o.backtest, law)[1] if o.backtest else None
  rows = [approaches.approach1_row(study, o.seed), row2,
          approaches.approach3_row(law.name, fit.params, fit.samples)]
  result['approaches'] = approaches.to_json(rows)
  _warn_unconverged(result)
  return Results(study, fit, result, rows, iso, held, o)


def _rows(result: dict, samples: dict | None, at_flops: float | None) -> list[tuple]:
  """(name, value, bootstrap samples or None) for each parameter and derived quantity."""
  rows = [(k, v, samples[k] if samples else None) for k, v in result['params'].items()]
  if result['law'] == 'chinchilla':
    C, compute = at_flops or 1.0, fitjson.compute_of(result)
    point = allocation.derived(result['params'], C, compute)
    boot = allocation.derived(samples, C, compute) if samples else {}
    keys = ('a', 'b') + (('N_opt', 'D_opt', 'tokens_per_param', 'a_local') if at_flops else ())
    rows += [(k if k in ('a', 'b') else f'{k} @ C={C:.3g}', point[k], boot.get(k)) for k in keys]
  return rows


def _units(result: dict) -> str:
  u, compute = result['units'], result.get('compute', {})
  return f'N: {u["N"]}; D: {u["D"]}; C: {u["C"]}' + (
      f'; allocation with C/(N·D) from the table, {compute["ratio_range"][0]:.4g} to '
      f'{compute["ratio_range"][1]:.4g}' if compute.get('convention') == 'table' else '')


def _residuals(result: dict) -> str:
  res = result['residuals']
  noise = res['eval_noise']
  return (f'residuals: rms {res["rms_log"]:.3%} of the loss (log residual), median '
          f'{res["median_abs_log"]:.3%}; ' + (
              f'median eval standard error {noise["median_rel_stderr"]:.3%} of the loss '
              f'({noise["points_with_stderr"]} of {result["n_points"]} points)' if noise else
              'no eval standard errors in the table (runs logged before eval_loss_stderr)'))


def _fit_lines(result: dict, samples: dict | None, at_flops: float | None) -> list[str]:
  out = [f'law {result["law"]}: {result["n_points"]} points, summed Huber objective '
         f'{result["objective"]:.6e}, converged {result["converged"]}'
         + (f', {len(next(iter(samples.values())))} bootstrap fits' if samples else '')]
  if 'units' in result:
    out.append(_units(result))
  out.append(f'{"quantity":<26}{"value":>12}{"stderr":>12}{"95% CI":>26}')
  for name, value, s in _rows(result, samples, at_flops):
    se, ci = (intervals.stderr(s), intervals.ci95(s)) if s is not None else (None, None)
    out.append(f'{name:<26}{float(value):>12.5g}{"" if se is None else f"{se:.4g}":>12}'
               f'{"" if ci is None else f"[{ci[0]:.4g}, {ci[1]:.4g}]":>26}')
  return out + [_residuals(result)]


def _bootstrap_line(b: dict) -> str:
  share = b['cold_other_basin_share']
  return (f'bootstrap: {b["converged"]} of {b["resamples"]} resamples converged, resampling '
          f'{b["resampled"]}; {b["cold_starts"]} also started cold from the grid' + (
              f', {share:.0%} of them ended in another basin' if share is not None else ''))


def _backtest_lines(held: pd.DataFrame, c_cut: float) -> list[str]:
  shown = [c for c in ('run', 'N', 'D', 'C', 'loss', 'predicted', 'rel_error') if c in held]
  return [f'backtest, fitted on C <= {c_cut:.3g}:', held[shown].to_string(index=False),
          backtest.noise_note(held)]
