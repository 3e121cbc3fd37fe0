"""Draw a scaling law on a laptop: an IsoFLOP sweep, the Chinchilla fit with bootstrap intervals,
the plots, and a backtest of the fit on the smaller budgets against the largest.

  python -m experiments.quickstart [--task=lm|diffusion] [--max-parallel=K] [--bootstrap=200]

Writes everything under runs/quickstart/ (runs/quickstart_diffusion/ for --task=diffusion): the
run directories in runs/, fit.json and bootstrap.csv (analysis.fit's, through the same library:
analysis.results) and the plots, for N
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

from analysis import allocation, backtest, cli, fitjson, intervals, isoflop, laws, results
from analysis import runs, study
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
  return 'no bootstrap' if samples is None else f'95% interval {intervals.text(samples, 3)}'


def describe_law(fitted: fitjson.Fitted, c_max: float, loss_name: str) -> None:
  """The fitted law, a and b and the optimal tokens per parameter, in the fit's own FLOP
  convention and with the N and the token it counts."""
  p, samples, compute = fitted.params, fitted.samples, fitted.compute
  units = fitted.units or {'N': 'parameters', 'D': 'tokens'}
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


def print_law(out: str, c_max: float, loss_name: str) -> None:
  """describe_law for the fit.json (and bootstrap.csv) in folder `out`."""
  describe_law(fitjson.read(pathlib.Path(out) / 'fit.json'), c_max, loss_name)


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


def analyse(rundir: str, out: str, bootstrap: int, loss_name: str) -> None:
  """The Chinchilla fit of the runs with all parameters (in `out`) and non-embedding ones (in
  out/nonembedding), each law described, and the backtest; the runs are read once."""
  loaded = runs.load(rundir)
  studies = {n: study.Study.from_runs(loaded, n=n) for n in ('total', 'nonembedding')}
  c_max = float(studies['total'].table['C'].max())
  options = results.Options(bootstrap=bootstrap, at_flops=c_max)
  fitted = {}
  for n, folder in (('total', out), ('nonembedding', os.path.join(out, 'nonembedding'))):
    print(f'\n--- Chinchilla fit, N = {study.N_LABELS[n]} ---')
    found = results.analyse(studies[n], laws.CHINCHILLA, options)
    wrote = found.write(pathlib.Path(folder))
    print('\n'.join(found.lines() + [wrote]))
    fitted[n] = fitjson.Fitted.of(found.json, found.fit.samples)
  for n in fitted:
    print()
    describe_law(fitted[n], c_max, loss_name)
  print()
  print_backtest(studies['total'].table)


def main(argv: list[str] | None = None) -> int:
  start = time.time()
  args = parser().parse_args(argv)
  sweep_file, out = SWEEPS[args.task]
  rundir = os.path.join(out, 'runs')
  failed = run_sweep(sweep_file, rundir, args.max_parallel)
  if failed is not None:
    return failed
  analyse(rundir, out, args.bootstrap, LOSS[args.task])
  print('plots: ' + ', '.join(sorted(str(p) for p in pathlib.Path(out).glob('*.png'))))
  print(f'quickstart finished in {time.time() - start:.0f} s; everything is under {out}/')
  return 0


if __name__ == '__main__':
  try:
    cli.run(lambda argv: sys.exit(main(argv)))
  except ConfigError as e:
    sys.exit(f'error: {e}')
