"""What `python -m analysis.fit` does for `--law=hparams` and `--law=critical_batch`: their flags,
the library calls (analysis.hparams, analysis.critical_batch) and the writing.

  python -m analysis.fit --runs=DIR --law=hparams --out=OUT [--optimum=band|interp] [--band=0.0025]
      [--lr-vars=N,D] [--batch-vars=D] [--allow-edge] [--batch-unit=tokens|sequences]
      [--n=total|nonembedding] [--loss=eval_loss] [--bootstrap=R] [--seed=S]
  python -m analysis.fit --csv=FILE --columns N=..,D=..,lr=..,batch=..,loss=.. --law=hparams ...
  python -m analysis.fit --runs=DIR --law=critical_batch --out=OUT [--target-loss=L]
      [--cbs-definition=mccandlish|zhang] [--reference-batch=256] [--overhead=0.2]
  python -m analysis.fit --csv=FILE --columns N=..,batch=..,steps=.. --law=critical_batch ...

Both write OUT/fit.json (analysis.hparams_json, analysis.critical_batch), OUT/bootstrap.csv
(hparams, with --bootstrap) and the figures (analysis.hparam_figures), all at once.
"""

import pathlib

import numpy as np

from analysis import critical_batch
from analysis import errors
from analysis import hparam_figures
from analysis import hparam_optima
from analysis import hparams
from analysis import hparams_json
from analysis import outdir

LAWS = ('hparams', 'critical_batch')


def add_arguments(p) -> None:
  g = p.add_argument_group('--law=hparams and --law=critical_batch')
  g.add_argument('--optimum', choices=hparam_optima.METHODS, default='band',
                 help='hparams: each cell\'s optimum from the runs within --band of its best '
                      '(Step Law, DeepSeek) or by Akima interpolation (Porian et al.)')
  g.add_argument('--band', type=float, default=0.0025,
                 help='hparams: relative band of --optimum=band')
  g.add_argument('--lr-vars', default='N,D', help='hparams: variables of the learning-rate law')
  g.add_argument('--batch-vars', default='D', help='hparams: variables of the batch-size law')
  g.add_argument('--allow-edge', action='store_true',
                 help='hparams: also fit cells whose optimum is on the edge of their grid')
  g.add_argument('--batch-unit', choices=hparams.BATCH_UNITS,
                 help='what the batch counts (runs: tokens by default; a CSV must say, here or '
                      'in its column name)')
  g.add_argument('--target-loss', type=float,
                 help='critical_batch: the loss to reach (runs; default: each size\'s highest '
                      'final loss)')
  g.add_argument('--cbs-definition', choices=critical_batch.DEFINITIONS, default='mccandlish')
  g.add_argument('--reference-batch', type=float, default=256.0,
                 help='critical_batch, zhang: the batch linear scaling starts from')
  g.add_argument('--overhead', type=float, default=0.2,
                 help='critical_batch, zhang: steps over linear scaling at the critical batch')


def _variables(flag: str, value: str) -> tuple[str, ...]:
  names = tuple(v.strip() for v in value.split(',') if v.strip())
  if not names or len(set(names)) < len(names) or set(names) - set(hparams.VARIABLES):
    raise errors.InputError(f'{flag}={value}: give distinct variables among N, D, C, e.g. N,D')
  return names


def _check(args) -> None:
  for name, value in (('--band', args.band), ('--reference-batch', args.reference_batch),
                      ('--overhead', args.overhead), ('--target-loss', args.target_loss)):
    if value is not None and not (np.isfinite(value) and value > 0):
      raise errors.InputError(f'{name} must be a finite number > 0, got {value}')


def run(args, out: pathlib.Path) -> None:
  _check(args)
  if args.law == 'hparams':
    return _hparams(args, out)
  return _critical_batch(args, out)


def _hparams(args, out: pathlib.Path) -> None:
  options = hparams.Options(optimum=args.optimum, band=args.band,
                            lr_vars=_variables('--lr-vars', args.lr_vars),
                            batch_vars=_variables('--batch-vars', args.batch_vars),
                            allow_edge=args.allow_edge, bootstrap=args.bootstrap, seed=args.seed)
  grid = (hparams.Grid.from_runs(args.runs, args.n, args.loss, args.batch_unit or 'tokens')
          if args.runs else hparams.Grid.from_csv(args.csv, args.columns, args.batch_unit))
  result = hparams.fit(grid, options)
  fit_json = hparams_json.to_json(result)
  samples = hparams_json.samples_table(result)
  with outdir.Staged(out) as stage:
    hparam_figures.all_figures(result, stage)
    if samples is not None:
      samples.to_csv(stage / 'bootstrap.csv', index=False)
    outdir.write_json(stage / 'fit.json', fit_json)
  print('\n'.join(hparams_json.lines(fit_json) + [f'wrote {out}/fit.json and plots']))


def _critical_batch(args, out: pathlib.Path) -> None:
  options = critical_batch.Options(args.cbs_definition, args.reference_batch, args.overhead,
                                   args.bootstrap, args.seed)
  if args.runs:
    unit = args.batch_unit or 'tokens'
    grid = hparams.Grid.from_runs(args.runs, args.n, args.loss, unit)
    table, targets = critical_batch.steps_table(grid, args.target_loss, args.loss or 'eval_loss')
  else:
    (table, unit), targets = critical_batch.csv_table(args.csv, args.columns, args.batch_unit), None
  result = critical_batch.fit(table, options)
  fit_json = critical_batch.to_json(result, unit, targets)
  with outdir.Staged(out) as stage:
    hparam_figures.critical_batch_figures(result, table, unit, stage)
    outdir.write_json(stage / 'fit.json', fit_json)
  print('\n'.join(critical_batch.lines(fit_json) + [f'wrote {out}/fit.json and plots']))
