"""Reproduce the Chinchilla Approach-3 fit on the digitised data, beside the published numbers.

  python -m experiments.reproduce_chinchilla [--data=data/chinchilla]
      [--out=runs/chinchilla_reproduction] [--bootstrap=4000] [--resampling=replication|multinomial]
      [--isoflop=akima|parabola] [--budget-rtol=0.05]

Fits L(N, D) = E + A/N^α + B/D^β to the 240 points with the 4,500-start grid, bootstraps it (by
default with exactly the resamples of Besiroglu et al. 2024: legacy numpy seed 42), checks the
acceptance criteria of issue 4, prints the averaging-bug contrast, and draws the Figure 4-style
contour plot and the tokens-per-parameter plot. It then prints Chinchilla's Table 2 as far as the
data allow: Approach 2 on the points grouped into budgets (the digitised table records no budget,
so complete linkage of C within --budget-rtol), Approach 3, and the published rows; Approach 1
needs training curves, which the digitised figure does not have. Exit status 1 when a check fails.
"""

import pathlib
import sys

import numpy as np

from analysis import allocation
from analysis import approach2
from analysis import approaches
from analysis import chinchilla
from analysis import cli
from analysis import engine
from analysis import errors
from analysis import figures
from analysis import fitjson
from analysis import intervals
from analysis import isoflop
from analysis import laws
from analysis import outdir

_COLS = ('E', 'A', 'B', 'alpha', 'beta')


def _row(name: str, p: dict, fmt: str = '{:>10.5g}') -> str:
  return f'{name:<34}' + ''.join(fmt.format(p[k]) for k in _COLS)


def averaging_contrast(table) -> dict:
  """Where L-BFGS with scipy's default stopping rules ends from the same 4,500-start grid when the
  Huber loss is summed over points and when it is averaged (the averaging bug)."""
  law = laws.CHINCHILLA
  ends = {f'{name}, best of grid': engine.fit(engine.problem(law, table, mean=mean), law.starts(),
                                              polish=False)
          for name, mean in (('sum', False), ('mean', True))}
  return {name: law.named(end.x) for name, end in ends.items()}


def table2(table, result: dict, samples: dict, estimator: str, rtol: float, seed: int):
  """Chinchilla's Table 2 rows this data allows, and the Approach 2 result. The digitised points
  carry no noise estimate, so Approach 2 resamples each budget's points."""
  iso = approach2.approach2(table, estimator, approach2.N_RESAMPLES, seed, rtol=rtol)
  rows = [approaches.Row(1, why_not='needs training curves, which the digitised figure does not '
                                    'have (one final loss per run)'),
          approaches.approach2_row(iso, notes=[
              f'{iso.settings["n_bracketed"]} of {iso.settings["n_budgets"]} budgets bracketed; '
              f'grouping: {iso.settings["grouping"]}']),
          approaches.approach3_row('chinchilla', result['params'], samples)]
  return rows, iso


def checks(result: dict) -> list[tuple[str, bool]]:
  p, se = result['params'], result['stderr']
  out = [(f'{k} within 0.5% of {chinchilla.GRID_FIT[k]}',
          abs(p[k] / chinchilla.GRID_FIT[k] - 1) <= 0.005) for k in _COLS]
  out += [(f'stderr {k} within 10% of {chinchilla.STDERR[k]}',
           abs(se[k] / chinchilla.STDERR[k] - 1) <= 0.10) for k in _COLS]
  out.append((f'a within 0.005 of {chinchilla.A_EXPONENT}',
              abs(result['a'] - chinchilla.A_EXPONENT) <= 0.005))
  return out


def draw(out: pathlib.Path, table, params: dict, samples: dict) -> None:
  figures.contours(table, params, out, name='chinchilla_figure4')
  C = np.geomspace(1e18, 1e25, 100)
  d = allocation.derived(params, C)
  boot = allocation.derived({k: v[:, None] for k, v in samples.items()}, C[None])
  figures.tokens_per_param(C, d['tokens_per_param'], intervals.band(boot['tokens_per_param']), out,
                           name='chinchilla_tokens_per_param')


def report(result: dict, samples: dict, contrast: dict) -> None:
  print(f'{"":<34}' + ''.join(f'{k:>10}' for k in _COLS))
  print(_row('ours (best of 4,500 starts)', result['params']))
  for name, p in chinchilla.PUBLISHED.items():
    print(_row(name, p))
  print(_row('ours, bootstrap stderr', result['stderr']))
  print(_row('Besiroglu et al. 2024, stderr', chinchilla.STDERR))
  for name, p in contrast.items():
    print(_row(f'Huber {name}', p) + f'   a = {laws.exponents(p["alpha"], p["beta"])[0]:.3f}')
  a = allocation.derived(samples, 1.0)['a']
  lo, hi = intervals.ci95(a)
  print(f'a = {result["a"]:.4f} (bootstrap stderr {intervals.stderr(a):.4f}, 95% CI [{lo:.4f}, '
        f'{hi:.4f}]); published 0.513, Hoffmann 0.46')
  for C in (1e22, 1e23, 1e24):
    print(f'tokens per parameter at C={C:.0e}: '
          f'{allocation.derived(result["params"], C)["tokens_per_param"]:.1f}')


def main(argv: list[str] | None = None) -> None:
  p = cli.Parser(prog='python -m experiments.reproduce_chinchilla',
                 description=__doc__.split('\n')[0])
  p.add_argument('--data', default=str(chinchilla.DEFAULT_DATA))
  p.add_argument('--out', default='runs/chinchilla_reproduction')
  p.add_argument('--bootstrap', type=int, default=chinchilla.N_RESAMPLES)
  p.add_argument('--resampling', choices=('replication', 'multinomial'), default='replication')
  p.add_argument('--seed', type=int, default=chinchilla.REPLICATION_SEED)
  p.add_argument('--isoflop', choices=isoflop.ESTIMATORS, default=isoflop.ESTIMATORS[0])
  p.add_argument('--budget-rtol', type=float, default=isoflop.RTOL,
                 help='complete-linkage tolerance in C that groups the points into budgets')
  args = p.parse_args(argv)
  if args.bootstrap < 2:
    raise errors.InputError(f'--bootstrap must be >= 2, got {args.bootstrap}')
  study = chinchilla.study(args.data)
  table = study.table
  draw_weights = (engine.replication_weights if args.resampling == 'replication'
                  else engine.multinomial_weights)
  fit = engine.fit_law(laws.CHINCHILLA, table, draw_weights(len(table), args.bootstrap, args.seed))
  result, samples = fitjson.law_json(study, fit), fit.samples
  report(result, samples, averaging_contrast(table))
  rows, iso = table2(table, result, samples, args.isoflop, args.budget_rtol, args.seed)
  print('\nChinchilla Table 2, as far as the digitised data allow')
  print('\n'.join(approaches.lines(rows, list(chinchilla.TABLE2.items()))))
  result['approaches'] = approaches.to_json(rows)
  draw(pathlib.Path(args.out), table, result['params'], samples)
  figures.isoflop_profiles(iso, pathlib.Path(args.out), name='chinchilla_isoflop')
  outdir.write_json(pathlib.Path(args.out) / 'fit.json', result)
  results = checks(result)
  for name, ok in results:
    print(f'{"PASS" if ok else "FAIL"}  {name}')
  print(f'wrote {args.out}/fit.json and the figures')
  if not all(ok for _, ok in results):
    sys.exit(1)


if __name__ == '__main__':
  cli.run(main)
