"""Plan a compute-optimal run from a Chinchilla-law fit: size, tokens, FLOPs, time, cost, energy.

  python -m analysis.plan --fit=OUTDIR/fit.json (--target-loss=L | --flops=C)
      --hardware=NAME [--mfu=0.4] [--price-per-hour=X] [--watts=W] [--hparams=HP/fit.json]

NAME is an entry of analysis.hardware.DEVICES (h100, h100-pcie, a100, tpu-v5e, ...), the same
table that training's MFU reads; the plan uses its dense bfloat16 peak.

Allocation and device-hours use the fit's own FLOP convention, recorded in fit.json's `compute`
(C = r(N)·N·D with r read off the fitted table, or 6ND): --flops and --mfu must be counted the
same way. Intervals are 95% percentiles over the bootstrap fits in bootstrap.csv next to fit.json
(written by `python -m analysis.fit --bootstrap=R`). A fit that did not converge is refused, and
so is a budget whose compute-optimal model is smaller than any the fit saw; a budget over 1,000x
beyond the fitted ones is planned with a one-line warning (analysis.allocation.within_reason).
With --hparams (the fit.json of `analysis.fit --law=hparams`), the plan also gives the learning
rate, the batch and the steps at its N and D (analysis.hparams_plan), and warns in one line when
the budget lies over 10x beyond the C that fit saw.
"""

import numpy as np

from analysis import allocation
from analysis import cli
from analysis import errors
from analysis import fitjson
from analysis import hardware
from analysis import hparams_json
from analysis import hparams_plan
from analysis import intervals

GPT3_MWH = 1287  # GPT-3's training energy as commonly estimated (Patterson et al. 2021)


def _check(args) -> None:
  if not 0 < args.mfu <= 1:
    raise errors.InputError(f'--mfu must be in (0, 1], got {args.mfu}')
  for name in ('flops', 'target_loss', 'price_per_hour', 'watts'):
    value = getattr(args, name)
    if value is not None and not (np.isfinite(value) and value > 0):
      raise errors.InputError(f'--{name.replace("_", "-")} must be a finite number > 0, got '
                              f'{value}')


def _parser() -> cli.Parser:
  p = cli.Parser(prog='python -m analysis.plan', description=__doc__.split('\n')[0])
  p.add_argument('--fit', required=True, help='fit.json from python -m analysis.fit')
  goal = p.add_mutually_exclusive_group(required=True)
  goal.add_argument('--target-loss', type=float, help='loss to reach at the least compute')
  goal.add_argument('--flops', type=float, help='training budget in FLOPs')
  p.add_argument('--hardware', required=True, choices=sorted(hardware.DEVICES))
  p.add_argument('--mfu', type=float, default=0.4, help='model FLOPs utilisation')
  p.add_argument('--price-per-hour', type=float, help='price of one device-hour')
  p.add_argument('--watts', type=float, help='device power, replacing the table')
  p.add_argument('--hparams', help='fit.json of analysis.fit --law=hparams: adds LR and batch')
  return p


def _budget_check(args, fitted: fitjson.Fitted, C: float) -> None:
  """Refuse a budget below the smallest model fitted; warn one far beyond the budgets fitted."""
  what = (f'--flops={C:.3g}' if args.flops else
          f'the budget that reaches --target-loss={args.target_loss} (C = {C:.3g})')
  far = allocation.within_reason(C, fitted.params, fitted.compute, fitted.fitted_range, what)
  if far:
    cli.warn(far)


def _print(args, device: hardware.Device, fitted: fitjson.Fitted, point: dict,
           boot: dict | None) -> None:
  print(f'{args.hardware}: {device.peak_flops:.3g} FLOP/s peak bf16 at MFU {args.mfu}, '
        f'{args.watts or device.watts:.0f} W' + (' (estimate)' if device.watts_estimated and
                                                 not args.watts else ''))
  compute = fitted.compute
  lo, hi = compute.ratio_K.min(), compute.ratio_K.max()
  print(f'FLOP convention of the fit: ' + ('C = 6ND' if compute.convention == '6nd' else
                                           f'C = r(N)·N·D, r from the fitted table ({lo:.4g} to '
                                           f'{hi:.4g})') + '; FLOPs, MFU and device-hours in it')
  if fitted.units:
    print(f'N_opt counts {fitted.units["N"]}; D_opt counts {fitted.units["D"]}')
  print(f'{"quantity":<18}{"value":>12}  95% CI')
  for key, value in point.items():
    print(f'{key:<18}{float(value):>12.4g}  {intervals.text(boot[key]) if boot else ""}')
  print(f'energy is {float(point["energy_MWh"]) / GPT3_MWH:.3g}x GPT-3\'s estimated {GPT3_MWH} MWh'
        + ('' if boot is not None else '; no bootstrap.csv beside the fit, so no intervals'))


def main(argv: list[str] | None = None) -> None:
  args = _parser().parse_args(argv)
  _check(args)
  fitted = fitjson.read(args.fit)
  hp = hparams_json.read(args.hparams) if args.hparams else None
  device = hardware.DEVICES[args.hardware]
  kw = dict(mfu=args.mfu, flops=args.flops, target_loss=args.target_loss,
            price_per_hour=args.price_per_hour, watts=args.watts, compute=fitted.compute)
  point = allocation.plan(fitted.params, device, **kw)
  if not np.isfinite(point['FLOPs']):
    raise errors.InputError(f'--target-loss={args.target_loss} is not above the fitted irreducible '
                            f'loss E={fitted.params["E"]:.4g}: no budget reaches it; pick a larger '
                            'target')
  _budget_check(args, fitted, float(point['FLOPs']))
  boot = allocation.plan(fitted.samples, device, **kw) if fitted.samples else None
  if hp is not None and (far := hparams_plan.far_warning(hp, float(point['FLOPs']))):
    cli.warn(far)
  _print(args, device, fitted, point, boot)
  if hp is not None:
    print('\n'.join(hparams_plan.lines(hp, point, boot)))


if __name__ == '__main__':
  cli.run(main)
