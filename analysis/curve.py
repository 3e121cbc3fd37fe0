"""Loss curves across learning-rate schedules: fit a law, predict any schedule, choose one.

Fit a loss-curve law to a few curves, predict any schedule's whole curve, choose a schedule.

  python -m analysis.curve fit --curves=A.csv,B.csv,RUN_DIR,... --law=multipower|annealing
      --out=DIR [--loss=eval_loss|train_loss] [--warmup=linear|none] [--min-step=S]
      [--bootstrap=R] [--seed=S] [--fit-lambda]
  python -m analysis.curve predict --fit=DIR/curve_fit.json (--curves=C.csv,RUN_DIR,... |
      --schedule=SPEC) --out=DIR2 [--loss=...] [--warmup=...] [--min-step=S]
  python -m analysis.curve choose --fit=DIR/curve_fit.json --steps=N --peak=X [--final=Y]
      [--warmup=W] [--out=DIR3]

`fit` writes DIR/curve_fit.json (the law, its named parameters with 95% intervals, each curve's fit
metrics) and curve_fit.png/.pdf. `predict` writes DIR2/curve_predict.json: per curve and their
`mean`, r2, mae, rmse, pred_e, worst_e and final_error (predicted − observed at the last step);
with --schedule, the predicted curve and its 95% band (printed too). `choose` prints the WSD
cooldown with the lowest predicted final loss and its gain over cosine (analysis.schedule_choice).

A curve is a CSV with columns step,lr,loss, or a run directory (analysis.curves says how each is
read). SPEC is a schedule of analysis.schedules, e.g. `wsd:steps=6000,peak=3e-3,final=3e-4,
warmup=20,cooldown=0.2,shape=sqrt` or `config:configs/lm.py:size=nano`. Bad input is one line and
exit status 2; nothing is written unless everything was computed.
"""

import pathlib

import numpy as np

from analysis import cli
from analysis import curve_json
from analysis import curve_plots
from analysis import curve_study
from analysis import curves as curves_lib
from analysis import errors
from analysis import outdir
from analysis import schedules
from analysis import schedule_choice

SCHEDULE_POINTS = 1000  # steps a --schedule prediction is written at (evenly spaced, last included)


def _parser() -> cli.Parser:
  p = cli.Parser(prog='python -m analysis.curve', description=__doc__.split('\n')[0])
  sub = p.add_subparsers(dest='command', required=True)
  fit = sub.add_parser('fit', help='fit a law to curves')
  predict = sub.add_parser('predict', help='score a fit on curves, or predict a schedule')
  choose = sub.add_parser('choose', help='the WSD cooldown with the lowest predicted final loss')
  for s in (fit, predict, choose):
    s.error = p.error  # one line, exit 2, for every subcommand
  for s in (fit, predict):
    s.add_argument('--loss', choices=('eval_loss', 'train_loss'), default='eval_loss',
                   help='run directories: which loss rows make the curve')
    s.add_argument('--warmup', choices=('linear', 'none'), default='linear',
                   help='CSVs: the LR before the first row (a linear warmup from 0 at step 0)')
    s.add_argument('--min-step', type=int,
                   help='drop observations before this step (default: a run\'s warmup_steps; '
                        'a CSV\'s first row)')
  fit.add_argument('--curves', required=True, help='comma-separated CSVs and run directories')
  fit.add_argument('--law', choices=curve_study.LAWS, default='multipower')
  fit.add_argument('--out', required=True)
  fit.add_argument('--bootstrap', type=int, default=200, help='resamples for the intervals')
  fit.add_argument('--seed', type=int, default=0)
  fit.add_argument('--fit-lambda', action='store_true', help='annealing: fit λ too')
  predict.add_argument('--fit', required=True, help='curve_fit.json of `fit`')
  what = predict.add_mutually_exclusive_group(required=True)
  what.add_argument('--curves', help='comma-separated CSVs and run directories to score')
  what.add_argument('--schedule', help='a schedule without data (analysis.schedules)')
  predict.add_argument('--out', required=True)
  choose.add_argument('--fit', required=True, help='curve_fit.json of `fit`')
  choose.add_argument('--steps', type=int, required=True)
  choose.add_argument('--peak', type=float, required=True, help='the peak LR')
  choose.add_argument('--final', type=float, help='the final LR (default peak/10)')
  choose.add_argument('--warmup', type=int, default=0, help='warmup steps')
  choose.add_argument('--out', help='also write DIR/schedule_choice.json')
  return p


def read_curves(spec: str, args) -> list[curves_lib.Curve]:
  paths = [s.strip() for s in spec.split(',') if s.strip()]
  if not paths:
    raise errors.InputError('--curves is empty: give CSVs or run directories, comma-separated')
  read = [curves_lib.read(path, loss=args.loss, warmup=args.warmup == 'linear',
                          min_step=args.min_step) for path in paths]
  curves_lib.check_same_data(read)
  names = [c.name for c in read]
  if len(set(names)) < len(names):
    raise errors.InputError(f'--curves names one curve twice ({", ".join(names)})')
  return read


def _series(fitted: curve_study.FittedLaw, c: curves_lib.Curve) -> curve_plots.Series:
  t = np.unique(np.linspace(max(1, c.first_P[0]), c.steps, SCHEDULE_POINTS).round().astype(int))
  loss, band = fitted.predict(c.lr_T, t)
  return curve_plots.Series(c.name, t, loss, band, c.step_P, c.loss_P,
                            curve_json.observed_law(fitted, c))


def _fit(args) -> None:
  if args.bootstrap < 0:
    raise errors.InputError(f'--bootstrap must be >= 0, got {args.bootstrap}')
  out = pathlib.Path(args.out)
  outdir.check_out(out)
  read = read_curves(args.curves, args)
  result = curve_study.fit(read, args.law, bootstrap=args.bootstrap, seed=args.seed,
                           fit_lambda=args.fit_lambda)
  report = curve_json.fit_json(result)
  series = [_series(curve_study.fitted_law(result), c) for c in read]
  with outdir.Staged(out) as stage:
    curve_plots.curves_figure(series, stage, 'curve_fit',
                              f'{args.law} fitted to {len(read)} curves')
    outdir.write_json(stage / 'curve_fit.json', report)
  ci = report.get('ci95', {})
  state = 'converged' if result.best.converged else 'NOT converged'
  print(f'{args.law} fitted to {len(read)} curves ({state}):')
  for k, v in report['params'].items():
    interval = f'[{ci[k][0]:.4g}, {ci[k][1]:.4g}]' if ci.get(k) else 'no interval'
    print(f'  {k:6s} {v:.6g}  95% {interval}')
  print(f'fit: mean r2 {report["mean"]["r2"]:.5f}, mae {report["mean"]["mae"]:.5f}; wrote {out}')


def _schedule_prediction(fitted: curve_study.FittedLaw, spec: str, out: pathlib.Path) -> None:
  recipe = schedules.recipe_of_spec(spec)
  lr_T = recipe.lr_T()
  t = np.unique(np.linspace(1, recipe.steps, SCHEDULE_POINTS).round().astype(int))
  loss, band = fitted.predict(lr_T, t)
  report = {'schedule': {'spec': spec, 'recipe': recipe.describe(), 'step': t.tolist(),
                         'loss': loss.tolist(),
                         'ci95': None if band is None else band.T.tolist()},
            'law': fitted.law, 'params': fitted.params}
  with outdir.Staged(out) as stage:
    curve_plots.schedule_figure(t, loss, band, lr_T, stage, 'curve_predict', spec)
    outdir.write_json(stage / 'curve_predict.json', report)
  print(f'{fitted.law} prediction for {spec}:\n  step      loss   95% interval')
  for i in np.unique(np.linspace(0, len(t) - 1, 11).round().astype(int)):
    interval = '' if band is None else f'[{band[0, i]:.4f}, {band[1, i]:.4f}]'
    print(f'  {t[i]:6d}  {loss[i]:.4f}   {interval}')
  print(f'wrote {out}')


def _predict(args) -> None:
  out = pathlib.Path(args.out)
  outdir.check_out(out)
  fitted = curve_json.read_fit(args.fit)
  if args.schedule:
    _schedule_prediction(fitted, args.schedule, out)
    return
  read = read_curves(args.curves, args)
  report = curve_json.predict_json(fitted, read, args.fit)
  series = [_series(fitted, c) for c in read]
  with outdir.Staged(out) as stage:
    curve_plots.curves_figure(series, stage, 'curve_predict', f'{fitted.law} from {args.fit}')
    outdir.write_json(stage / 'curve_predict.json', report)
  print('curve              r2       mae      worst_e  final_error  (in eval stderr)')
  for name, m in [*report['curves'].items(), ('mean', report['mean'])]:
    in_stderr = f'  ({m["final_error_in_stderr"]:+.2f})' if 'final_error_in_stderr' in m else ''
    print(f'{name:16s} {m["r2"]:8.5f} {m["mae"]:8.5f} {m["worst_e"]:8.5f} '
          f'{m["final_error"]:+.5f}{in_stderr}')
  print(f'wrote {out}')


def _choose(args) -> None:
  final = args.peak / 10 if args.final is None else args.final
  spec = f'wsd:steps={args.steps},peak={args.peak!r},final={final!r},warmup={args.warmup}'
  schedules.recipe_of_spec(spec)  # one line for a budget that does not parse
  if args.out:
    outdir.check_out(pathlib.Path(args.out))
  fitted = curve_json.read_fit(args.fit)
  choice = schedule_choice.choose(fitted, args.steps, args.peak, final, args.warmup)
  best = choice.best
  print(f'{args.steps} steps, peak {args.peak:g}, final {final:g}, warmup {args.warmup}:')
  text = lambda ci: f'[{ci[0]:.4f}, {ci[1]:.4f}]' if ci else 'no interval'
  print(f'  best WSD: cooldown {best["fraction"]:g} of the steps, {best["shape"]}: predicted '
        f'final loss {best["final_loss"]:.4f}, 95% {text(best["final_loss_ci95"])}')
  print(f'  gain over cosine: {choice.gain:+.4f} nats, 95% {text(choice.gain_ci95)}')
  if args.out:
    with outdir.Staged(pathlib.Path(args.out)) as stage:
      outdir.write_json(stage / 'schedule_choice.json', choice.to_json())


def main(argv: list[str] | None = None) -> None:
  args = _parser().parse_args(argv)
  {'fit': _fit, 'predict': _predict, 'choose': _choose}[args.command](args)


if __name__ == '__main__':
  cli.run(main)
