"""Draw a scaling law on a laptop: an IsoFLOP sweep, the Chinchilla fit with bootstrap intervals,
the plots, and a backtest of the fit on the smaller budgets against the largest.

  python -m experiments.quickstart [--task=lm|diffusion] [--max-parallel=K] [--bootstrap=200]

Writes everything under runs/quickstart/ (runs/quickstart_diffusion/ for --task=diffusion): the
run directories in runs/, fit.json and bootstrap.csv (analysis.fit's schema) and the plots, for N
counting all parameters; the same fit with non-embedding N (Kaplan's count, which moves the
exponents at small scale: Pearce & Song 2024) goes to nonembedding/. Allocations use the runs'
own FLOP convention (Chinchilla's, with attention and embeddings), not 6ND. Killed and started
again, it reuses every completed run.
"""

import argparse
import os
import pathlib
import sys
import time

import numpy as np

from analysis import allocation, backtest, cli, errors, fit, isoflop, laws, plan
from experiments import local, runspec, sweep
from scaling.errors import ConfigError

SWEEPS = {'lm': ('configs/sweeps/quickstart.py', 'runs/quickstart'),
          'diffusion': ('configs/sweeps/dit_ladder.py', 'runs/quickstart_diffusion')}
LOSS = {'lm': 'eval loss in nats per byte', 'diffusion': 'eval loss (the training objective)'}


def default_parallel() -> int:
  return len(local.visible_gpus()) or len(os.sched_getaffinity(0))


def at_least_one(text: str) -> int:
  if int(text) < 1:
    raise argparse.ArgumentTypeError(f'{text} must be at least 1')
  return int(text)


def parser() -> cli.Parser:
  p = cli.Parser(prog='python -m experiments.quickstart', description=__doc__.split('\n')[0])
  p.add_argument('--task', choices=tuple(SWEEPS), default='lm')
  p.add_argument('--max-parallel', type=at_least_one, default=default_parallel(),
                 help='runs at a time')
  p.add_argument('--bootstrap', type=int, default=200, help='resamples for the intervals')
  return p


def run_sweep(sweep_file: str, rundir: str, max_parallel: int) -> int | None:
  """Exit status when the sweep did not finish, else None."""
  study = runspec.load(sweep_file)
  sweep.check_outdir(study, rundir)
  sweep.print_plan(study, sweep.statuses_in(study, rundir), mfu=0.4)
  statuses, stopped_by = sweep.run_local(study, rundir, max_parallel)
  if stopped_by is not None:
    print('stopped; run the quickstart again to finish the sweep')
    return 128 + stopped_by
  unfinished = sorted(name for name, s in statuses.items() if s != 'completed')
  if unfinished:
    print(f'error: runs {", ".join(unfinished)} did not complete; see {rundir}/logs',
          file=sys.stderr)
    return 1
  return None


def held_out_budget(table) -> float:
  """The largest C of every budget below the top one: the backtest fits on C <= this."""
  labels = isoflop.budget_labels(table['C'])
  return float(table['C'][labels < labels.max()].max())


def interval(samples) -> str:
  if samples is None:
    return 'no bootstrap'
  lo, hi = np.percentile(samples[np.isfinite(samples)], [2.5, 97.5])
  return f'95% interval [{lo:.3g}, {hi:.3g}]'


def print_law(out: str, c_max: float, loss_name: str) -> None:
  """The fitted law, a and b and the optimal tokens per parameter (fit.json, bootstrap.csv), in
  the fit's own FLOP convention and with the N and the token it counts."""
  p, samples, compute, units = plan.read_fit(pathlib.Path(out) / 'fit.json')
  units = units or {'N': 'parameters', 'D': 'tokens'}
  print(f'fitted law: L(N, D) = {p["E"]:.3g} + {p["A"]:.3g} / N^{p["alpha"]:.3f} + '
        f'{p["B"]:.3g} / D^{p["beta"]:.3f}  ({loss_name}; N: {units["N"]}; D: {units["D"]})')
  point = allocation.derived(p, c_max, compute)
  boot = allocation.derived(samples, c_max, compute) if samples else {}
  convention = ('C = 6ND' if compute.convention == '6nd' else
                f'C = r(N)·N·D, r = {compute.ratio_K.min():.3g} to {compute.ratio_K.max():.3g} '
                'from the runs')
  for key, label in (('a', 'a, N_opt ~ C^a'), ('b', 'b, D_opt ~ C^b'),
                     ('a_local', f'local slope d log N_opt / d log C at C = {c_max:.3g}'),
                     ('tokens_per_param', f'optimal tokens per parameter at C = {c_max:.3g} '
                                          f'({convention})')):
    print(f'{label}: {point[key]:.3f}, {interval(boot.get(key))}')


def print_backtest(table) -> float:
  """Fits on the smaller budgets, scores the largest; returns the best run's relative error."""
  c_cut = held_out_budget(table)
  _, held = backtest.backtest(table, c_cut)
  best = held.loc[held['loss'].idxmin()]
  print(f'backtest: fit on the {int((table["C"] <= c_cut).sum())} runs with C <= {c_cut:.3g}, '
        f'predict the {len(held)} runs at C = {held["C"].median():.3g}')
  print(f'  best run there (N = {best["N"]:.0f}, D = {best["D"]:.0f}): measured '
        f'{best["loss"]:.4f}, predicted {best["predicted"]:.4f}, error {best["rel_error"]:+.2%}; '
        f'mean |error| over the {len(held)} runs {held["rel_error"].abs().mean():.2%}')
  print(f'  {backtest.noise_note(held)}')
  return float(best['rel_error'])


def main(argv: list[str] | None = None) -> int:
  start = time.time()
  args = parser().parse_args(argv)
  sweep_file, out = SWEEPS[args.task]
  rundir = os.path.join(out, 'runs')
  failed = run_sweep(sweep_file, rundir, args.max_parallel)
  if failed is not None:
    return failed
  table = fit.load_table({'runs': rundir}, {}, 0, laws.CHINCHILLA)
  c_max = float(table['C'].max())
  nonembedding = os.path.join(out, 'nonembedding')
  for n, folder in (('total', out), ('nonembedding', nonembedding)):
    print(f'\n--- Chinchilla fit, N = {fit.N_LABELS[n]} ---')
    fit.main(['--runs', rundir, '--law', 'chinchilla', '--out', folder, '--n', n, '--bootstrap',
              str(args.bootstrap), '--at-flops', str(c_max)])
  for folder in (out, nonembedding):
    print()
    print_law(folder, c_max, LOSS[args.task])
  print()
  print_backtest(table)
  print('plots: ' + ', '.join(sorted(str(p) for p in pathlib.Path(out).glob('*.png'))))
  print(f'quickstart finished in {time.time() - start:.0f} s; everything is under {out}/')
  return 0


if __name__ == '__main__':
  try:
    sys.exit(main())
  except (ConfigError, errors.InputError) as e:
    sys.exit(f'error: {e}')
