"""Plan a compute-optimal run from a Chinchilla-law fit: size, tokens, FLOPs, time, cost, energy.

  python -m analysis.plan --fit=OUTDIR/fit.json (--target-loss=L | --flops=C)
      --hardware=NAME [--mfu=0.4] [--price-per-hour=X] [--watts=W]

NAME is an entry of analysis.hardware.DEVICES (h100, h100-pcie, a100, tpu-v5e, ...), the same
table that training's MFU reads; the plan uses its dense bfloat16 peak.

Allocation and device-hours use the fit's own FLOP convention, recorded in fit.json's `compute`
(C = r(N)·N·D with r read off the fitted table, or 6ND): --flops and --mfu must be counted the
same way. Intervals are 95% percentiles over the bootstrap fits in bootstrap.csv next to fit.json
(written by `python -m analysis.fit --bootstrap=R`). A fit that did not converge is refused.
"""

import json
import pathlib

import numpy as np
import pandas as pd

from analysis import allocation
from analysis import cli
from analysis import errors
from analysis import hardware

GPT3_MWH = 1287  # GPT-3's training energy as commonly estimated (Patterson et al. 2021)
_PARAMS = ('E', 'A', 'B', 'alpha', 'beta')


def read_fit(path: pathlib.Path) -> tuple[dict, dict | None, allocation.Compute, dict]:
  """Point parameters, the bootstrap samples when bootstrap.csv sits beside fit.json, the fit's
  FLOP convention and its units (which N, what a token is; {} when fit.json predates them); a fit
  that did not converge, or a damaged bootstrap.csv, is refused."""
  try:
    fit = json.loads(path.read_text())
  except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
    raise errors.InputError(f'cannot read {path} ({e}): pass fit.json from analysis.fit') from e
  if not isinstance(fit, dict) or fit.get('law') != 'chinchilla':
    raise errors.InputError(f'{path} is not a Chinchilla-law fit: refit with --law=chinchilla')
  if fit.get('converged') is not True:
    raise errors.InputError(f'{path} records a fit that did not converge (converged: '
                            f'{fit.get("converged")}): fix the table and refit before planning')
  if not isinstance(fit.get('params'), dict) or set(fit['params']) != set(_PARAMS):
    raise errors.InputError(f'{path} lacks the parameters {", ".join(_PARAMS)}: refit with '
                            'python -m analysis.fit --law=chinchilla')
  if not all(isinstance(v, (int, float)) and np.isfinite(v) for v in fit['params'].values()):
    raise errors.InputError(f'{path} has non-finite parameters: refit')
  try:
    compute = allocation.Compute.from_json(fit['compute'])
  except (KeyError, TypeError, ValueError) as e:
    raise errors.InputError(f'{path} does not record its FLOP convention (compute): refit with '
                            'python -m analysis.fit') from e
  boot = path.parent / 'bootstrap.csv'
  samples = None
  if boot.is_file():
    try:
      df = pd.read_csv(boot)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
      raise errors.InputError(f'cannot read {boot} ({e}): refit with --bootstrap=R') from e
    missing = [k for k in _PARAMS if k not in df.columns]
    if missing or not len(df):
      raise errors.InputError(f'{boot} lacks ' + (f'the columns {", ".join(missing)}' if missing
                                                  else 'rows') +
                              ': refit with --bootstrap=R, or remove the file')
    values = {k: pd.to_numeric(df[k], errors='coerce').to_numpy(np.float64) for k in _PARAMS}
    if not all(np.isfinite(v).all() for v in values.values()):
      raise errors.InputError(f'{boot} has empty or non-numeric values: refit with --bootstrap=R')
    samples = values
  return fit['params'], samples, compute, fit.get('units') or {}


def plan(params: dict, device: hardware.Device, mfu: float, flops=None, target_loss=None,
         price_per_hour: float | None = None, watts: float | None = None,
         compute: allocation.Compute | None = None) -> dict:
  """Every planned quantity; params may hold arrays (bootstrap samples), results follow them.
  `compute` is the fit's FLOP convention (None: C = 6ND)."""
  C = np.broadcast_to(flops, np.shape(params['E'])) if flops else allocation.compute_for_loss(
      target_loss, params, compute)
  N, D = allocation.optimal(C, params, compute)
  hours = C / (device.peak_flops * mfu) / 3600
  out = {'N_opt': N, 'D_opt': D, 'tokens_per_param': D / N, 'FLOPs': C,
         'loss': allocation.optimal_loss(C, params, compute), 'device_hours': hours,
         'energy_MWh': hours * (watts or device.watts) / 1e6}
  if price_per_hour is not None:
    out['cost'] = hours * price_per_hour
  return out


def _interval(samples: np.ndarray) -> str:
  """95% percentile interval over the bootstrap fits for which the quantity exists."""
  ok = samples[np.isfinite(samples)]
  if not ok.size:
    return 'no bootstrap fit reaches it'
  lo, hi = np.percentile(ok, [2.5, 97.5])
  return f'[{lo:.4g}, {hi:.4g}]' + (f' ({ok.size}/{samples.size} fits)' if ok.size < samples.size
                                    else '')


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
  return p


def main(argv: list[str] | None = None) -> None:
  args = _parser().parse_args(argv)
  _check(args)
  params, samples, compute, units = read_fit(pathlib.Path(args.fit))
  device = hardware.DEVICES[args.hardware]
  kw = dict(mfu=args.mfu, flops=args.flops, target_loss=args.target_loss,
            price_per_hour=args.price_per_hour, watts=args.watts, compute=compute)
  point = plan(params, device, **kw)
  if not np.isfinite(point['FLOPs']):
    raise errors.InputError(f'--target-loss={args.target_loss} is not above the fitted irreducible '
                            f'loss E={params["E"]:.4g}: no budget reaches it; pick a larger target')
  boot = plan(samples, device, **kw) if samples else None
  print(f'{args.hardware}: {device.peak_flops:.3g} FLOP/s peak bf16 at MFU {args.mfu}, '
        f'{args.watts or device.watts:.0f} W' + (' (estimate)' if device.watts_estimated and
                                                 not args.watts else ''))
  lo, hi = compute.ratio_K.min(), compute.ratio_K.max()
  print(f'FLOP convention of the fit: ' + ('C = 6ND' if compute.convention == '6nd' else
                                           f'C = r(N)·N·D, r from the fitted table ({lo:.4g} to '
                                           f'{hi:.4g})') + '; FLOPs, MFU and device-hours in it')
  if units:
    print(f'N_opt counts {units["N"]}; D_opt counts {units["D"]}')
  print(f'{"quantity":<18}{"value":>12}  95% CI')
  for key, value in point.items():
    print(f'{key:<18}{float(value):>12.4g}  {_interval(boot[key]) if boot else ""}')
  print(f'energy is {float(point["energy_MWh"]) / GPT3_MWH:.3g}x GPT-3\'s estimated {GPT3_MWH} MWh'
        + ('' if boot is not None else '; no bootstrap.csv beside the fit, so no intervals'))


if __name__ == '__main__':
  cli.run(main)
