"""μP learning-rate transfer: run configs/sweeps/mup_lr_transfer.py through the sweep launcher
(ordinary run directories under OUT/runs), then plot final eval loss against learning rate, one
curve per width, for sp and for mup, and write OUT/lr_transfer.json with each width's best
learning rate.

  python -m experiments.mup_lr_transfer --task=lm --out=runs/mup_lr_transfer/lm
  python -m experiments.mup_lr_transfer --task=dit --out=runs/mup_lr_transfer/dit

A second call resumes the sweep: completed runs are not run again.
"""

import argparse
import json
import math
import os
import sys

import numpy as np

from analysis import runs as run_table
from configs.sweeps import mup_lr_transfer as grid
from experiments import runspec, sweep


def table(outdir: str, params: tuple[str, ...], lrs: tuple[float, ...]) -> dict:
  """{parameterization: {width: {lr: final eval loss}}} from the run directories."""
  t = run_table.load(os.path.join(outdir, 'runs')).table.set_index('run')
  out: dict = {}
  for p in params:
    out[p] = {w: {lr: float(t.loc[grid.run_name(p, w, lr), 'eval_loss'])
                  for lr in lrs if grid.run_name(p, w, lr) in t.index}
              for w in grid.WIDTHS}
  return out


def best(losses: dict) -> float | None:
  finite = {lr: loss for lr, loss in losses.items() if math.isfinite(loss)}
  return min(finite, key=finite.get) if finite else None


def plot(result: dict, task: str, path: str) -> None:
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, axes = plt.subplots(1, len(result), figsize=(5 * len(result), 4), sharey=True,
                           squeeze=False)
  for ax, p in zip(axes[0], result):
    for w, losses in result[p].items():
      lrs = sorted(losses)
      ax.semilogx(lrs, [losses[lr] for lr in lrs], 'o-', base=2, label=f'd_model {w}')
    ax.set(xlabel='peak learning rate', title=f'{task} {p}')
    ax.legend()
  axes[0][0].set_ylabel('final eval loss')
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog='python -m experiments.mup_lr_transfer')
  p.add_argument('--task', choices=tuple(grid.CONFIGS), default='lm')
  p.add_argument('--out', default='')
  p.add_argument('--steps', type=int, default=300)
  p.add_argument('--max-parallel', type=int, default=2)
  p.add_argument('--only', choices=grid.PARAMETERIZATIONS, default='',
                 help='one parameterisation (default: both)')
  p.add_argument('--lowest', type=int, default=grid.DEFAULTS['lowest'],
                 help='exponent of the smallest learning rate of the grid, 2^lowest')
  p.add_argument('--highest', type=int, default=grid.DEFAULTS['highest'])
  args = p.parse_args(argv)
  out = args.out or os.path.join('runs', 'mup_lr_transfer', args.task)
  sweep_args = dict(task=args.task, steps=args.steps, only=args.only, lowest=args.lowest,
                    highest=args.highest)
  if args.lowest > args.highest:
    p.error(f'--lowest {args.lowest} is above --highest {args.highest}')
  params, lrs = grid.grid(sweep_args)
  study = runspec.load('configs/sweeps/mup_lr_transfer.py:'
                       + ','.join(f'{k}={v}' for k, v in sweep_args.items()))
  rundir = os.path.join(out, 'runs')
  sweep.check_outdir(study, rundir)
  sweep.print_plan(study, sweep.statuses_in(study, rundir), mfu=0.4)
  statuses, stopped_by = sweep.run_local(study, rundir, args.max_parallel)
  if stopped_by is not None or any(s != 'completed' for s in statuses.values()):
    print(f'error: not every run completed; see {rundir}/logs and run again to resume',
          file=sys.stderr)
    return 1
  result = table(out, params, lrs)
  summary = {prm: {str(w): {'best_lr': best(l), 'loss_at_best': l.get(best(l), np.nan),
                            'losses': {f'{lr:.3g}': v for lr, v in l.items()}}
                   for w, l in result[prm].items()} for prm in result}
  with open(os.path.join(out, 'lr_transfer.json'), 'w') as f:
    json.dump({'task': args.task, 'steps': args.steps, 'widths': list(grid.WIDTHS),
               'lrs': list(lrs), **summary}, f, indent=1)
  plot(result, args.task, os.path.join(out, 'lr_transfer.png'))
  for prm in summary:
    print(prm, ', '.join(f'd{w}: best lr {s["best_lr"] or float("nan"):.3g} '
                         f'(loss {s["loss_at_best"]:.4f})' for w, s in summary[prm].items()))
  print(f'wrote {out}/lr_transfer.json and lr_transfer.png')
  return 0


if __name__ == '__main__':
  sys.exit(main())
