"""Fit a scaling law to runs or to a CSV table, with bootstrap uncertainty, fit.json and plots.

  python -m analysis.fit (--runs=DIR | --csv=FILE) --law=chinchilla|power|data_constrained --out=OUTDIR
      [--loss=eval_loss|eval_bits_per_byte|<column>] [--base-fit=FIT_JSON]
      [--columns N=<col>,D=<col>,C=<col>,loss=<col>,loss_stderr=<col>] [--exclude-top-loss=K]
      [--n=total|nonembedding] [--compute=table|6nd] [--bootstrap=R] [--cold-share=0.1]
      [--seed=S] [--x=C|N|D] [--at-flops=C] [--backtest=C_CUT] [--allow-mixed]
      [--isoflop=akima|parabola] [--isoflop-resampling=auto|points|stderr|SIGMA]
      [--columns ...,budget=<col>]

Writes OUTDIR/fit.json (docs/analysis.md lists its keys), OUTDIR/bootstrap.csv when R > 0 (read
by analysis.plan), OUTDIR/backtest.csv with --backtest (fit on C <= C_CUT, relative error on
every larger point) and the plots. The command parses, calls the library (analysis.study and the
modules it names) and writes: everything is computed before anything is written, so bad input
leaves no half-written folder (analysis.results does the work; analysis.data_constrained for
that law). --law=hparams and --law=critical_batch: analysis.fit_batch_laws lists their flags.
"""

import dataclasses
import pathlib

import numpy as np

from analysis import cli
from analysis import data_constrained
from analysis import errors
from analysis import fit_batch_laws
from analysis import fitjson
from analysis import isoflop
from analysis import laws
from analysis import outdir
from analysis import points
from analysis import results
from analysis import study as study_lib


def _parser() -> cli.Parser:
  p = cli.Parser(prog='python -m analysis.fit', description=__doc__.split('\n')[0])
  src = p.add_mutually_exclusive_group(required=True)
  src.add_argument('--runs', help='folder of run directories (docs/run-format.md)')
  src.add_argument('--csv', help='table with one row per point')
  p.add_argument('--law', choices=('chinchilla', 'power', 'data_constrained', *fit_batch_laws.LAWS),
                 default='chinchilla')
  p.add_argument('--loss', help='the loss column (runs: eval_loss; eval_bits_per_byte compares '
                 'tokenizers); same as --columns loss=<col>')
  p.add_argument('--base-fit', help='data_constrained: fit.json of a --law=chinchilla fit whose '
                 'E, A, B, alpha, beta are held fixed (else fitted with R_D*, R_N*)')
  p.add_argument('--x', choices=('C', 'N', 'D'), default='C', help='variable of --law=power')
  p.add_argument('--out', required=True, help='output folder')
  p.add_argument('--columns', default='',
                 help='N=<col>,D=<col>,C=<col>,loss=<col>,loss_stderr=<col>,cluster=<col>,'
                      'budget=<col>')
  p.add_argument('--n', choices=tuple(study_lib.N_COLUMNS), default='total',
                 help='parameter count N: all parameters or non-embedding (Kaplan)')
  p.add_argument('--compute', choices=('table', '6nd'), default='table',
                 help="FLOP convention: the table's own C/(N·D), interpolated in log N, or 6ND")
  p.add_argument('--exclude-top-loss', type=int, default=0, help='drop the K highest-loss points')
  p.add_argument('--bootstrap', type=int, default=0, help='resamples for standard errors and CIs')
  p.add_argument('--cold-share', type=float, default=0.1,
                 help='share of resamples also refitted from the whole grid of starts')
  p.add_argument('--seed', type=int, default=0)
  p.add_argument('--isoflop', choices=isoflop.ESTIMATORS,
                 help='Approach 2 estimator (default akima; naming one makes a table without '
                      'usable budgets an error)')
  p.add_argument('--isoflop-resampling', default='auto', metavar='auto|points|stderr|SIGMA',
                 help="Approach 2's bootstrap: Gaussian noise of each point's loss_stderr "
                      '(auto, when every point has one) or of SIGMA, else the points')
  p.add_argument('--at-flops', type=float, help='also report N_opt, D_opt, D/N at this budget')
  p.add_argument('--backtest', type=float, metavar='C_CUT',
                 help='also fit on C <= C_CUT and score the prediction of every larger point')
  p.add_argument('--allow-mixed', action='store_true',
                 help='fit runs that mix tasks, datasets or tokenizers (deliberately)')
  fit_batch_laws.add_arguments(p)
  return p


def _check_args(args) -> None:
  if args.bootstrap < 0:
    raise errors.InputError(f'--bootstrap must be >= 0, got {args.bootstrap}')
  if not 0 <= args.cold_share <= 1:
    raise errors.InputError(f'--cold-share must be in [0, 1], got {args.cold_share}')
  for name in ('at_flops', 'backtest'):
    value = getattr(args, name)
    if value is not None and not (np.isfinite(value) and value > 0):
      raise errors.InputError(f'--{name.replace("_", "-")} must be a finite number > 0, got {value}')


def _study(args) -> study_lib.Study:
  columns = points.parse_columns(args.columns)
  if args.loss:
    columns.setdefault('loss', args.loss)
  kw = dict(n=args.n, compute=args.compute, exclude_top_loss=args.exclude_top_loss)
  if args.runs:
    return study_lib.Study.from_runs(args.runs, columns, allow_mixed=args.allow_mixed, **kw)
  return study_lib.Study.from_csv(args.csv, columns, **kw)


def fit_data_constrained(study: study_lib.Study, args, out: pathlib.Path) -> None:
  base = None
  if args.base_fit:
    try:
      base = {k: fitjson.read_dict(args.base_fit)['params'][k] for k in laws.CHINCHILLA.params}
    except errors.InputError as e:
      raise errors.InputError(f'--base-fit={args.base_fit} is not the fit.json of a converged '
                              f'--law=chinchilla fit ({e}); give one, or leave --base-fit out')
  result = data_constrained.fit(study.table, base, f'given ({args.base_fit})' if base else None)
  boot_json = None
  if args.bootstrap:
    boot_json = {**data_constrained.bootstrap(result, study.weights(args.bootstrap, args.seed),
                                              args.cold_share, args.seed),
                 'resampled': fitjson.resampled(study)}
  with outdir.Staged(out) as stage:
    outdir.write_json(stage / 'fit.json', data_constrained.to_json(result, study.table)
                      | fitjson.study_json(study) | ({'bootstrap': boot_json} if boot_json else {}))
  print('\n'.join(data_constrained.lines(result, boot_json)))
  print(f'wrote {out}/fit.json (no plots for this law)')


def main(argv: list[str] | None = None) -> None:
  args = _parser().parse_args(argv)
  _check_args(args)
  out = pathlib.Path(args.out)
  outdir.check_out(out)
  if args.law in fit_batch_laws.LAWS:
    return fit_batch_laws.run(args, out)
  study = _study(args)
  if args.law == 'data_constrained':
    study.check(laws.CHINCHILLA)
    return fit_data_constrained(study, args, out)
  law = laws.CHINCHILLA if args.law == 'chinchilla' else laws.PowerSum((args.x,))
  options = results.Options(**{f.name: getattr(args, f.name)
                               for f in dataclasses.fields(results.Options)})
  found = results.analyse(study, law, options)
  wrote = found.write(out)
  print('\n'.join(found.lines() + [wrote]))


if __name__ == '__main__':
  cli.run(main)
