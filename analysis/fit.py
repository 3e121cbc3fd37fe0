"""Fit a scaling law to runs or to a CSV table, with bootstrap uncertainty, fit.json and plots.

  python -m analysis.fit (--runs=DIR | --csv=FILE) --law=chinchilla|power --out=OUTDIR
      [--columns N=<col>,D=<col>,C=<col>,loss=<col>] [--exclude-top-loss=K]
      [--bootstrap=R] [--seed=S] [--x=C|N|D] [--at-flops=C] [--backtest=C_CUT]

Writes OUTDIR/fit.json (keys: law, n_points, params, objective, stderr and ci95 when R > 0, a, b,
converged), OUTDIR/bootstrap.csv when R > 0 (read by analysis.plan), OUTDIR/backtest.csv with
--backtest (fit on C <= C_CUT, relative error on every larger point) and the plots.
"""

import json
import os
import pathlib

import numpy as np
import pandas as pd

from analysis import allocation
from analysis import approaches
from analysis import backtest
from analysis import cli
from analysis import errors
from analysis import fitting
from analysis import laws
from analysis import plots
from analysis import points
from analysis import runs

RUNS_COLUMNS = {'C': 'C_chinchilla', 'loss': 'eval_loss'}  # defaults when reading --runs


def law_for(name: str, x: str = 'C') -> laws.Law:
  return laws.CHINCHILLA if name == 'chinchilla' else laws.Law((x,))


def load_table(source: dict, columns: dict[str, str], exclude_top_loss: int,
               law: laws.Law) -> pd.DataFrame:
  """Checked canonical table from {'runs': DIR} or {'csv': FILE}."""
  if 'runs' in source:
    raw, columns = runs.load(source['runs']).table, {**RUNS_COLUMNS, **columns}
  else:
    raw = points.read_csv(source['csv'])
  table = points.canonical(raw, columns)
  points.check(table, law)
  table = points.drop_top_loss(table, exclude_top_loss)
  points.check(table, law)
  return table


def fit_table(table: pd.DataFrame, law: laws.Law,
              weights_RxP: np.ndarray | None = None) -> tuple[dict, dict | None]:
  """fit.json's content, and the named bootstrap samples (None without resamples)."""
  prob = fitting.problem(law, table, table['loss'])
  fit = fitting.fit(prob, fitting.grid_starts(law))
  params = {k: float(v) for k, v in law.named(fit.x).items()}
  result = {'law': law.name, 'n_points': len(table), 'params': params, 'objective': fit.objective}
  samples = None
  if weights_RxP is not None and len(weights_RxP):
    boot = fitting.bootstrap(prob, fit.x, weights_RxP)
    samples = law.named(boot.x[boot.converged & np.isfinite(boot.f)])
    result['stderr'], result['ci95'] = fitting.summarize(samples)
  ab = laws.exponents(params['alpha'], params['beta']) if law.name == 'chinchilla' else (None, None)
  result.update(a=ab[0], b=ab[1], converged=fit.converged)
  return result, samples


def write_plots(out: pathlib.Path, table: pd.DataFrame, law: laws.Law, params: dict,
                samples: dict | None) -> list[str]:
  """Every figure that applies to this law and table; returns notes on the ones left out."""
  plots.loss_vs_compute(table, law, params, out)
  predicted = law.predict(params, **{v: table[v].to_numpy() for v in law.variables})
  plots.residuals(table, predicted, out)
  notes = []
  if law.name == 'chinchilla':
    plots.contours(table, params, out)
    C = np.geomspace(table['C'].min(), table['C'].max() * 100, 100)
    N, D = allocation.optimal_6nd(C, **params)
    bands = None
    if samples:
      Ns, Ds = allocation.optimal_6nd(C[None], **{k: v[:, None] for k, v in samples.items()})
      bands = {'N': np.percentile(Ns, [2.5, 97.5], 0), 'D': np.percentile(Ds, [2.5, 97.5], 0)}
    plots.allocation_bands(C, N, D, bands, out)
  try:
    iso = approaches.approach2(table)
    plots.isoflop(table, iso.table, approaches.budgets(table['C']), out)
  except errors.InputError as e:
    notes.append(f'no IsoFLOP plot: {e}')
  return notes


def write_json(path: pathlib.Path, obj: dict) -> None:
  tmp = path.with_suffix('.json.tmp')
  tmp.write_text(json.dumps(obj, indent=2) + '\n')
  os.replace(tmp, path)


def summary_rows(result: dict, samples: dict | None, at_flops: float | None) -> list[tuple]:
  """(name, value, bootstrap samples or None) for each parameter and derived quantity."""
  rows = [(k, v, samples[k] if samples else None) for k, v in result['params'].items()]
  if result['law'] == 'chinchilla':
    C = at_flops or 1.0
    point = allocation.derived(result['params'], C)
    boot = allocation.derived(samples, C) if samples else {}
    keys = ('a', 'b') + (('N_opt', 'D_opt', 'tokens_per_param') if at_flops else ())
    rows += [(k if k in ('a', 'b') else f'{k} @ C={C:.3g}', point[k], boot.get(k)) for k in keys]
  return rows


def print_table(result: dict, samples: dict | None, at_flops: float | None) -> None:
  print(f'law {result["law"]}: {result["n_points"]} points, summed Huber objective '
        f'{result["objective"]:.6e}, converged {result["converged"]}'
        + (f', {len(next(iter(samples.values())))} bootstrap fits' if samples else ''))
  print(f'{"quantity":<26}{"value":>12}{"stderr":>12}{"95% CI":>26}')
  for name, value, s in summary_rows(result, samples, at_flops):
    se, ci = '', ''
    if s is not None:
      lo, hi = np.percentile(s, [2.5, 97.5])
      se, ci = f'{np.std(s, ddof=1):.4g}', f'[{lo:.4g}, {hi:.4g}]'
    print(f'{name:<26}{float(value):>12.5g}{se:>12}{ci:>26}')


def _parser() -> cli.Parser:
  p = cli.Parser(prog='python -m analysis.fit', description=__doc__.split('\n')[0])
  src = p.add_mutually_exclusive_group(required=True)
  src.add_argument('--runs', help='folder of run directories (docs/run-format.md)')
  src.add_argument('--csv', help='table with one row per point')
  p.add_argument('--law', choices=('chinchilla', 'power'), default='chinchilla')
  p.add_argument('--x', choices=('C', 'N', 'D'), default='C', help='variable of --law=power')
  p.add_argument('--out', required=True, help='output folder')
  p.add_argument('--columns', default='', help='N=<col>,D=<col>,C=<col>,loss=<col>')
  p.add_argument('--exclude-top-loss', type=int, default=0, help='drop the K highest-loss points')
  p.add_argument('--bootstrap', type=int, default=0, help='resamples for standard errors and CIs')
  p.add_argument('--seed', type=int, default=0)
  p.add_argument('--at-flops', type=float, help='also print N_opt, D_opt, D/N at this budget')
  p.add_argument('--backtest', type=float, metavar='C_CUT',
                 help='also fit on C <= C_CUT and score the prediction of every larger point')
  return p


def main(argv: list[str] | None = None) -> None:
  args = _parser().parse_args(argv)
  if args.bootstrap < 0:
    raise errors.InputError(f'--bootstrap must be >= 0, got {args.bootstrap}')
  law = law_for(args.law, args.x)
  source = {'runs': args.runs} if args.runs else {'csv': args.csv}
  table = load_table(source, points.parse_columns(args.columns), args.exclude_top_loss, law)
  weights = fitting.multinomial_weights(len(table), args.bootstrap, args.seed)
  result, samples = fit_table(table, law, weights)
  held = backtest.backtest(table, args.backtest, law)[1] if args.backtest else None
  out = pathlib.Path(args.out)
  notes = write_plots(out, table, law, result['params'], samples)
  if samples:
    pd.DataFrame(samples).to_csv(out / 'bootstrap.csv', index=False)
  else:  # a stale one would give analysis.plan intervals from another fit
    (out / 'bootstrap.csv').unlink(missing_ok=True)
  if held is not None:
    held.to_csv(out / 'backtest.csv', index=False)
  write_json(out / 'fit.json', result)
  print_table(result, samples, args.at_flops)
  if held is not None:
    print(f'backtest, fitted on C <= {args.backtest:.3g}:')
    shown = [c for c in ('run', 'N', 'D', 'C', 'loss', 'predicted', 'rel_error') if c in held]
    print(held[shown].to_string(index=False))
  for note in notes:
    print(note)
  print(f'wrote {out}/fit.json' + (' and bootstrap.csv' if samples else '') + ' and plots')


if __name__ == '__main__':
  cli.run(main)
