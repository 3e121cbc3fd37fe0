"""Fit a scaling law to runs or to a CSV table, with bootstrap uncertainty, fit.json and plots.

  python -m analysis.fit (--runs=DIR | --csv=FILE) --law=chinchilla|power|data_constrained --out=OUTDIR
      [--loss=eval_loss|eval_bits_per_byte|<column>] [--base-fit=FIT_JSON]
      [--columns N=<col>,D=<col>,C=<col>,loss=<col>,loss_stderr=<col>] [--exclude-top-loss=K]
      [--n=total|nonembedding] [--compute=table|6nd] [--bootstrap=R] [--cold-share=0.1]
      [--seed=S] [--x=C|N|D] [--at-flops=C] [--backtest=C_CUT] [--allow-mixed]
      [--isoflop=parabola|akima] [--columns ...,budget=<col>]

Writes OUTDIR/fit.json (keys: law, n_points, params, objective, stderr and ci95 when R > 0, a, b,
converged, then units, compute, residuals, eval_noise, bootstrap, at_flops, and approaches: the
three Chinchilla approaches side by side, analysis/three_approaches.py; docs/analysis.md),
OUTDIR/bootstrap.csv when R > 0 (read by analysis.plan), OUTDIR/backtest.csv with --backtest (fit
on C <= C_CUT, relative error on every larger point) and the plots. Everything is computed before
anything is written, so bad input leaves no half-written folder.
"""

import json
import pathlib
import sys

import numpy as np
import pandas as pd

from analysis import allocation
from analysis import backtest
from analysis import cli
from analysis import data_constrained
from analysis import errors
from analysis import fitting
from analysis import isoflop
from analysis import isoflop_plots
from analysis import laws
from analysis import outdir
from analysis import plots
from analysis import points
from analysis import runs
from analysis import three_approaches

RUNS_COLUMNS = {'C': 'C_chinchilla', 'loss': 'eval_loss'}  # defaults when reading --runs
N_COLUMNS = {'total': 'N', 'nonembedding': 'N_nonembedding'}  # --n: the default N column
N_LABELS = {'total': 'all parameters', 'nonembedding': 'non-embedding parameters'}
MIN_CONVERGED_SHARE = 0.95


def law_for(name: str, x: str = 'C') -> laws.Law:
  return laws.CHINCHILLA if name == 'chinchilla' else laws.Law((x,))


def _token_unit(raw: pd.DataFrame) -> str:
  """What one token of D is: the byte tokenizer's are bytes; a DiT's, image patches."""
  tasks, names = set(raw['task']), {str(t).split(' ')[0] for t in raw['tokenizer'].dropna()}
  if tasks == {'lm'} and names == {'byte'}:
    return 'tokens (bytes: the byte-level tokenizer)'
  if tasks == {'lm'} and len(names) == 1:
    return f'tokens (of the {names.pop()} tokenizer)'
  if tasks == {'diffusion'}:
    return 'tokens (image patches)'
  return 'tokens'


def load_table(source: dict, columns: dict[str, str], exclude_top_loss: int,
               law: laws.Law, n: str = 'total', compute: str = 'table',
               allow_mixed: bool = False) -> pd.DataFrame:
  """Checked canonical table from {'runs': DIR} or {'csv': FILE}; table.attrs['units'] says
  which N, D and C it holds and table.attrs['mixed'] what mixed runs it allowed."""
  columns = dict(columns)
  if 'runs' in source:
    raw = runs.load(source['runs']).table
    columns = {**RUNS_COLUMNS, **columns}
    mixed = runs.mixes(raw)
    if mixed and not allow_mixed:
      raise errors.InputError(f'the runs mix {"; ".join(mixed)}: one law should not fit them; '
                              'point --runs at one study, or pass --allow-mixed if deliberate')
    unit = _token_unit(raw)
  else:
    raw, mixed, unit = points.read_csv(source['csv']), [], 'tokens'
  if 'N' not in columns and n != 'total':
    if N_COLUMNS[n] not in raw.columns:
      raise errors.InputError(f'--n={n} needs a {N_COLUMNS[n]} column: the table has none; map '
                              f'the count with --columns N=<column>')
    columns['N'] = N_COLUMNS[n]
  stderr_name = f'{columns.get("loss", "loss")}_stderr'
  if 'loss_stderr' not in columns and stderr_name in raw.columns:
    columns['loss_stderr'] = stderr_name
  table = points.canonical(raw, columns)
  points.check(table, law)
  table = points.drop_top_loss(table, exclude_top_loss)
  points.check(table, law)
  c_column = columns.get('C', 'C') if columns.get('C', 'C') in raw.columns else None
  if compute == '6nd':
    table['C'] = 6 * table['N'] * table['D']
  has_d = columns.get('D', 'D') in raw.columns
  table.attrs['units'] = {
      'N': f'{N_LABELS[n]} (column {columns.get("N", "N")})',
      'D': unit if has_d or 'runs' in source else f'{unit}, D = C/(6N)',
      'C': 'C = 6ND' if compute == '6nd' or not c_column else f'FLOPs (column {c_column})',
      'loss': f'column {columns.get("loss", "loss")}'}
  table.attrs['mixed'] = mixed
  return table


def fit_table(table: pd.DataFrame, law: laws.Law, weights_RxP: np.ndarray | None = None, *,
              compute: str = 'table', cold_share: float = 0.0,
              seed: int = 0) -> tuple[dict, dict | None]:
  """fit.json's content, and the named bootstrap samples (None without resamples)."""
  prob = fitting.problem(law, table, table['loss'])
  starts = fitting.grid_starts(law)
  fit = fitting.fit(prob, starts)
  params = {k: float(v) for k, v in law.named(fit.x).items()}
  result = {'law': law.name, 'n_points': len(table), 'params': params, 'objective': fit.objective}
  samples, boot = None, None
  if weights_RxP is not None and len(weights_RxP):
    boot = fitting.bootstrap_with_cold_starts(prob, fit.x, weights_RxP, starts, cold_share, seed)
    if boot.converged_R.sum() >= 2:
      samples = law.named(boot.x_RxQ[boot.converged_R])
      result['stderr'], result['ci95'] = fitting.summarize(samples)
  ab = laws.exponents(params['alpha'], params['beta']) if law.name == 'chinchilla' else (None, None)
  result.update(a=ab[0], b=ab[1], converged=fit.converged)
  if law.name == 'chinchilla':
    conv = (allocation.Compute.six_nd() if compute == '6nd' else
            allocation.Compute.from_table(table['N'], table['D'], table['C']))
    result['compute'] = conv.to_json()
  predicted = law.predict(params, **{v: table[v].to_numpy() for v in law.variables})
  result['residuals'] = residual_summary(table, predicted)
  if boot is not None:
    clusters = table['cluster'].nunique() if 'cluster' in table else len(table)
    result['bootstrap'] = {**boot.summary(), 'resampled': 'points' if clusters == len(table) else
                           f'{clusters} clusters of points (WSD branches of one trunk together)'}
  return result, samples


def residual_summary(table: pd.DataFrame, predicted) -> dict:
  """The fit's log residuals beside the measurements' own noise (median relative stderr)."""
  r = np.log(predicted) - np.log(table['loss'].to_numpy())
  out = {'rms_log': float(np.sqrt(np.mean(r**2))), 'median_abs_log': float(np.median(np.abs(r)))}
  se = table['loss_stderr'].to_numpy(float) if 'loss_stderr' in table else np.full(len(r), np.nan)
  ok = np.isfinite(se) & (se >= 0)
  out['eval_noise'] = None if not ok.any() else {
      'median_stderr': float(np.median(se[ok])),
      'median_rel_stderr': float(np.median(se[ok] / table['loss'].to_numpy()[ok])),
      'points_with_stderr': int(ok.sum())}
  return out


def compute_of(result: dict) -> allocation.Compute | None:
  return allocation.Compute.from_json(result['compute']) if 'compute' in result else None


def at_flops_summary(result: dict, samples: dict | None, C: float) -> dict:
  """fit.json's allocation at one budget, with 95% intervals over the bootstrap fits."""
  compute = compute_of(result)
  keys = ('N_opt', 'D_opt', 'tokens_per_param', 'a_local', 'b_local')
  point = allocation.derived(result['params'], C, compute)
  out = {'C': C, **{k: float(point[k]) for k in keys}}
  if samples:
    boot = allocation.derived(samples, C, compute)
    out['ci95'] = {k: [float(q) for q in np.percentile(boot[k], [2.5, 97.5])] for k in keys}
  return out


def write_plots(out: pathlib.Path, table: pd.DataFrame, law: laws.Law, params: dict,
                samples: dict | None, compute: allocation.Compute | None = None,
                units: dict | None = None) -> list[str]:
  """Every figure that applies to this law and table; returns notes on the ones left out."""
  plots.loss_vs_compute(table, law, params, out, compute=compute)
  predicted = law.predict(params, **{v: table[v].to_numpy() for v in law.variables})
  plots.residuals(table, predicted, out)
  notes = []
  if law.name == 'chinchilla':
    plots.contours(table, params, out, compute=compute)
    C = np.geomspace(table['C'].min(), table['C'].max() * 100, 100)
    N, D = allocation.optimal(C, params, compute)
    bands = None
    if samples:
      Ns, Ds = allocation.optimal(C[None], {k: v[:, None] for k, v in samples.items()}, compute)
      bands = {'N': np.percentile(Ns, [2.5, 97.5], 0), 'D': np.percentile(Ds, [2.5, 97.5], 0)}
    plots.allocation_bands(C, N, D, bands, out)
    ratio_band = None if bands is None else np.percentile(Ds / Ns, [2.5, 97.5], 0)
    u = units or {'N': 'parameters', 'D': 'tokens'}
    plots.tokens_per_param(C, D / N, ratio_band, out,
                           ylabel=f'compute-optimal D/N\nD: {u["D"]}\nN: {u["N"]}')
  return notes


def summary_rows(result: dict, samples: dict | None, at_flops: float | None) -> list[tuple]:
  """(name, value, bootstrap samples or None) for each parameter and derived quantity."""
  rows = [(k, v, samples[k] if samples else None) for k, v in result['params'].items()]
  if result['law'] == 'chinchilla':
    C, compute = at_flops or 1.0, compute_of(result)
    point = allocation.derived(result['params'], C, compute)
    boot = allocation.derived(samples, C, compute) if samples else {}
    keys = ('a', 'b') + (('N_opt', 'D_opt', 'tokens_per_param', 'a_local') if at_flops else ())
    rows += [(k if k in ('a', 'b') else f'{k} @ C={C:.3g}', point[k], boot.get(k)) for k in keys]
  return rows


def print_table(result: dict, samples: dict | None, at_flops: float | None) -> None:
  print(f'law {result["law"]}: {result["n_points"]} points, summed Huber objective '
        f'{result["objective"]:.6e}, converged {result["converged"]}'
        + (f', {len(next(iter(samples.values())))} bootstrap fits' if samples else ''))
  if 'units' in result:
    u = result['units']
    print(f'N: {u["N"]}; D: {u["D"]}; C: {u["C"]}' + (
        f'; allocation with C/(N·D) from the table, {result["compute"]["ratio_range"][0]:.4g} to '
        f'{result["compute"]["ratio_range"][1]:.4g}' if result.get('compute', {}).get(
            'convention') == 'table' else ''))
  print(f'{"quantity":<26}{"value":>12}{"stderr":>12}{"95% CI":>26}')
  for name, value, s in summary_rows(result, samples, at_flops):
    se, ci = '', ''
    if s is not None:
      lo, hi = np.percentile(s, [2.5, 97.5])
      se, ci = f'{np.std(s, ddof=1):.4g}', f'[{lo:.4g}, {hi:.4g}]'
    print(f'{name:<26}{float(value):>12.5g}{se:>12}{ci:>26}')
  res = result['residuals']
  noise = res['eval_noise']
  print(f'residuals: rms {res["rms_log"]:.3%} of the loss (log residual), median '
        f'{res["median_abs_log"]:.3%}; ' + (
            f'median eval standard error {noise["median_rel_stderr"]:.3%} of the loss '
            f'({noise["points_with_stderr"]} of {result["n_points"]} points)' if noise else
            'no eval standard errors in the table (runs logged before eval_loss_stderr)'))


def _parser() -> cli.Parser:
  p = cli.Parser(prog='python -m analysis.fit', description=__doc__.split('\n')[0])
  src = p.add_mutually_exclusive_group(required=True)
  src.add_argument('--runs', help='folder of run directories (docs/run-format.md)')
  src.add_argument('--csv', help='table with one row per point')
  p.add_argument('--law', choices=('chinchilla', 'power', 'data_constrained'), default='chinchilla')
  p.add_argument('--loss', help='the loss column (runs: eval_loss; eval_bits_per_byte compares '
                 'tokenizers); same as --columns loss=<col>')
  p.add_argument('--base-fit', help='data_constrained: fit.json of a --law=chinchilla fit whose '
                 'E, A, B, alpha, beta are held fixed (else fitted with R_D*, R_N*)')
  p.add_argument('--x', choices=('C', 'N', 'D'), default='C', help='variable of --law=power')
  p.add_argument('--out', required=True, help='output folder')
  p.add_argument('--columns', default='',
                 help='N=<col>,D=<col>,C=<col>,loss=<col>,loss_stderr=<col>,cluster=<col>,'
                      'budget=<col>')
  p.add_argument('--n', choices=tuple(N_COLUMNS), default='total',
                 help='parameter count N: all parameters or non-embedding (Kaplan)')
  p.add_argument('--compute', choices=('table', '6nd'), default='table',
                 help="FLOP convention: the table's own C/(N·D), interpolated in log N, or 6ND")
  p.add_argument('--exclude-top-loss', type=int, default=0, help='drop the K highest-loss points')
  p.add_argument('--bootstrap', type=int, default=0, help='resamples for standard errors and CIs')
  p.add_argument('--cold-share', type=float, default=0.1,
                 help='share of resamples also refitted from the whole grid of starts')
  p.add_argument('--seed', type=int, default=0)
  p.add_argument('--isoflop', choices=isoflop.ESTIMATORS,
                 help='Approach 2 estimator (default parabola; naming one makes a table without '
                      'usable budgets an error)')
  p.add_argument('--at-flops', type=float, help='also report N_opt, D_opt, D/N at this budget')
  p.add_argument('--backtest', type=float, metavar='C_CUT',
                 help='also fit on C <= C_CUT and score the prediction of every larger point')
  p.add_argument('--allow-mixed', action='store_true',
                 help='fit runs that mix tasks, datasets or tokenizers (deliberately)')
  return p


def fit_data_constrained(table: pd.DataFrame, base_fit: str | None, out: pathlib.Path,
                         n_bootstrap: int, seed: int) -> None:
  base = None
  if base_fit:
    try:
      given = json.loads(pathlib.Path(base_fit).read_text())
      base = given['params'] if given.get('law') == 'chinchilla' and given.get('converged') else None
    except (OSError, ValueError, KeyError):
      pass
    if base is None:
      raise errors.InputError(f'--base-fit={base_fit} is not the fit.json of a converged '
                              '--law=chinchilla fit; give one, or leave --base-fit out')
  result = data_constrained.fit(table, base, f'given ({base_fit})' if base_fit else None)
  intervals = data_constrained.bootstrap(table, result, base, n_bootstrap, seed) if n_bootstrap else None
  with outdir.Staged(out) as stage:
    outdir.write_json(stage / 'fit.json', data_constrained.to_json(result, table)
                      | {'units': table.attrs['units']}
                      | ({'bootstrap': intervals} if intervals else {}))
  print('\n'.join(data_constrained.lines(result, intervals)))
  print(f'wrote {out}/fit.json (no plots for this law)')


def _check_args(args) -> None:
  if args.bootstrap < 0:
    raise errors.InputError(f'--bootstrap must be >= 0, got {args.bootstrap}')
  if not 0 <= args.cold_share <= 1:
    raise errors.InputError(f'--cold-share must be in [0, 1], got {args.cold_share}')
  for name in ('at_flops', 'backtest'):
    value = getattr(args, name)
    if value is not None and not (np.isfinite(value) and value > 0):
      raise errors.InputError(f'--{name.replace("_", "-")} must be a finite number > 0, got {value}')


def _warn(message: str) -> None:
  print(f'warning: {message}', file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
  args = _parser().parse_args(argv)
  _check_args(args)
  out = pathlib.Path(args.out)
  outdir.check_out(out)
  law = law_for('chinchilla' if args.law == 'data_constrained' else args.law, args.x)
  source = {'runs': args.runs} if args.runs else {'csv': args.csv}
  columns = points.parse_columns(args.columns)
  if args.loss:
    columns.setdefault('loss', args.loss)
  table = load_table(source, columns, args.exclude_top_loss, law,
                     n=args.n, compute=args.compute, allow_mixed=args.allow_mixed)
  if args.law == 'data_constrained':
    return fit_data_constrained(table, args.base_fit, out, args.bootstrap, args.seed)
  if table.attrs['mixed']:
    _warn(f'fitting runs that mix {"; ".join(table.attrs["mixed"])} (--allow-mixed)')
  row2, iso = three_approaches.isoflop_row(table, args.isoflop, args.bootstrap, args.seed)
  for note in iso.warnings if iso else []:
    _warn(f'Approach 2: {note}')
  weights = (fitting.cluster_weights(table['cluster'], args.bootstrap, args.seed)
             if 'cluster' in table else
             fitting.multinomial_weights(len(table), args.bootstrap, args.seed))
  result, samples = fit_table(table, law, weights, compute=args.compute,
                              cold_share=args.cold_share, seed=args.seed)
  result['units'] = table.attrs['units']
  if table.attrs['mixed']:
    result['mixed'] = table.attrs['mixed']
  if args.at_flops and law.name == 'chinchilla':
    result['at_flops'] = at_flops_summary(result, samples, args.at_flops)
  held = backtest.backtest(table, args.backtest, law)[1] if args.backtest else None
  approach_rows = three_approaches.rows(source, table, result, samples, row2, args.seed)
  result['approaches'] = three_approaches.to_json(approach_rows)
  if not result['converged']:
    _warn('the fit did not converge (no start met a stopping rule at a stationary point); '
          'fit.json says converged: false, and analysis.plan refuses it')
  if 'bootstrap' in result:
    b = result['bootstrap']
    if b['converged'] < MIN_CONVERGED_SHARE * b['resamples']:
      _warn(f'only {b["converged"]} of {b["resamples"]} bootstrap resamples converged (< 95%): '
            'the intervals are from the converged ones and may be too narrow')
  with outdir.Staged(out) as stage:
    notes = write_plots(stage, table, law, result['params'], samples, compute_of(result),
                        result['units'])
    if samples:
      pd.DataFrame(samples).to_csv(stage / 'bootstrap.csv', index=False)
    if held is not None:
      held.to_csv(stage / 'backtest.csv', index=False)
    if iso is not None:
      isoflop_plots.profiles(iso, stage)
    outdir.write_json(stage / 'fit.json', result)
  print_table(result, samples, args.at_flops)
  print('\n'.join(three_approaches.lines(approach_rows)))
  if 'bootstrap' in result:
    b = result['bootstrap']
    share = b['cold_other_basin_share']
    print(f'bootstrap: {b["converged"]} of {b["resamples"]} resamples converged, resampling '
          f'{b["resampled"]}; {b["cold_starts"]} also started cold from the grid' + (
              f', {share:.0%} of them ended in another basin' if share is not None else ''))
  if held is not None:
    print(f'backtest, fitted on C <= {args.backtest:.3g}:')
    shown = [c for c in ('run', 'N', 'D', 'C', 'loss', 'predicted', 'rel_error') if c in held]
    print(held[shown].to_string(index=False))
    print(backtest.noise_note(held))
  for note in notes:
    print(note)
  print(f'wrote {out}/fit.json' + (' and bootstrap.csv' if samples else '') + ' and plots')


if __name__ == '__main__':
  cli.run(main)
