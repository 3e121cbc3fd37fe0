"""Launch a sweep: every run of a sweep file, locally or on SLURM, with DIR/sweep.json as its index.

  python -m experiments.sweep --sweep=configs/sweeps/NAME.py --outdir=DIR --backend=local|slurm
      [--dry-run] [--max-parallel=K] [--mfu=0.4] [--nodes=1 --gpus-per-node=8 --time=24:00:00
      --partition=P --sbatch=EXTRA ...]

Runs whose run.json says completed are skipped and the others resume from their checkpoints, so
a killed sweep started again finishes the study without redoing anything. --dry-run prints every
run's N, D, FLOPs and share of the total, the total, and H100-hours at --mfu; it starts nothing.
"""

import argparse
import os
import sys

from analysis import cli
from experiments import local, runspec, slurm
from scaling import flops
from scaling.errors import ConfigError
from scaling.runlog import read_json, write_json_atomic

BACKENDS = ('local', 'slurm', 'submitit')
INDEX = 'sweep.json'
H100 = 'h100'


def check_outdir(sweep: runspec.Sweep, outdir: str) -> None:
  """One outdir holds one study: a different sweep, or a run redefined, stops before any run."""
  old = read_json(os.path.join(outdir, INDEX))
  if old is None:
    return
  if old['sweep'] != sweep.name:
    raise ConfigError(f'--outdir: {outdir} holds sweep {old["sweep"]!r} (from {old["file"]}), not '
                      f'{sweep.name!r}; pick another --outdir')
  names = {r.name for r in sweep.runs}
  for entry in old['runs']:
    launched = {k: entry[k] for k in ('config', 'overrides', 'trunk')}
    if entry['name'] in names and launched != sweep.run(entry['name']).identity():
      raise ConfigError(f'--outdir: run {entry["name"]} in {outdir} was launched with other '
                        f'settings than {sweep.file} now gives; pick another --outdir')


def write_index(sweep: runspec.Sweep, outdir: str, statuses: dict[str, str],
                jobs: list[str] | None = None) -> None:
  runs = [{'name': r.name, **r.identity(), 'status': statuses[r.name], 'N': r.n_params,
           'N_nonembedding': r.n_params_nonembedding, 'D': r.tokens, 'C': r.flops, 'spent': r.spent}
          for r in sweep.runs]
  index = {'format_version': 1, 'sweep': sweep.name, 'file': sweep.file,
           'convention': sweep.convention, 'runs': runs, 'slurm_jobs': jobs or []}
  write_json_atomic(os.path.join(outdir, INDEX), index)


def human(x: float) -> str:
  for unit, scale in (('T', 1e12), ('B', 1e9), ('M', 1e6), ('K', 1e3)):
    if abs(x) >= scale:
      return f'{x / scale:.3g}{unit}'
  return f'{x:.3g}'


def h100_hours(total_flops: float, mfu: float) -> float:
  return total_flops / (flops.table_peak_flops(H100) * mfu) / 3600


def print_plan(sweep: runspec.Sweep, statuses: dict[str, str], mfu: float) -> None:
  total = sum(r.spent for r in sweep.runs)
  print(f'sweep {sweep.name} ({sweep.file}): {len(sweep.runs)} runs, FLOPs under the '
        f'{sweep.convention} convention')
  width = max(len(r.name) for r in sweep.runs)
  print(f'{"run":<{width}} {"N":>8} {"D":>8} {"C":>10} {"share":>7}  status')
  for r in sweep.runs:
    print(f'{r.name:<{width}} {human(r.n_params):>8} {human(r.tokens):>8} {r.flops:>10.3g} '
          f'{r.spent / total:>7.2%}  {statuses[r.name]}')
  if any(r.trunk for r in sweep.runs):
    print('C counts from step 0 (a branch includes its trunk up to the fork); share and total '
          'count what each run computes itself')
  print(f'total {total:.3g} FLOPs = {h100_hours(total, mfu):.4g} H100-hours at {mfu:.0%} MFU '
        f'({flops.table_peak_flops(H100):.3g} FLOP/s bf16 dense peak)')


def report_done(outdir: str, total: int):
  """on_done for the local pool: one line per ended run."""
  done = [0]

  def on_done(run: runspec.Run, status: str, seconds: float) -> None:
    done[0] += 1
    final = (read_json(os.path.join(outdir, run.name, 'run.json')) or {}).get('final') or {}
    loss = f', eval_loss {final["eval_loss"]:.4f}' if 'eval_loss' in final else ''
    print(f'[{done[0]}/{total}] {run.name}: {status} after {seconds:.1f} s{loss}', flush=True)
  return on_done


def statuses_in(sweep: runspec.Sweep, outdir: str) -> dict[str, str]:
  return {r.name: local.status(outdir, r.name) for r in sweep.runs}


def run_local(sweep: runspec.Sweep, outdir: str, max_parallel: int) -> tuple[dict, int | None]:
  """(name -> status, the signal that stopped the sweep or None)."""
  statuses = statuses_in(sweep, outdir)
  todo = sum(s != 'completed' for s in statuses.values())
  show = report_done(outdir, todo)

  def on_done(run, status, seconds):
    show(run, status, seconds)
    statuses[run.name] = status
    write_index(sweep, outdir, statuses)

  pool = local.Pool(sweep.runs, outdir, max_parallel, on_done)  # checks the slots first
  os.makedirs(outdir, exist_ok=True)
  write_index(sweep, outdir, statuses)
  print(f'{len(sweep.runs) - todo} of {len(sweep.runs)} runs already completed; running {todo}, '
        f'{max_parallel} at a time; logs in {outdir}/logs', flush=True)
  with local.catch_stop() as stop:
    return pool.run(stop), (stop[0] if stop else None)


def run_cluster(sweep: runspec.Sweep, args: argparse.Namespace, res: slurm.Resources) -> None:
  statuses = statuses_in(sweep, args.outdir)
  todo = [r for r in sweep.runs if statuses[r.name] != 'completed']
  if not todo:
    print('every run has completed; nothing to submit')
    return
  queued = slurm.active((read_json(os.path.join(args.outdir, INDEX)) or {}).get('slurm_jobs', []))
  if queued:
    raise ConfigError(f'--outdir: SLURM jobs {", ".join(queued)} of this sweep are still queued or '
                      'running; wait for them (or scancel them) before launching again')
  if args.backend == 'slurm':
    scripts = slurm.scripts(sweep.name, todo, args.outdir, res, args.max_parallel)
    if args.dry_run:
      for path, text in scripts:
        print(f'--- {path}\n{text}', end='')
      return
    slurm.require_sbatch()
  elif args.dry_run:
    return
  os.makedirs(os.path.join(args.outdir, 'logs'), exist_ok=True)
  if args.backend == 'slurm':
    ids = slurm.submit(slurm.write(scripts))
  else:
    ids = slurm.submit_with_submitit(sweep.name, todo, args.outdir, res, args.max_parallel)
  write_index(sweep, args.outdir, statuses, ids)
  print(f'submitted {len(todo)} runs as SLURM jobs {", ".join(ids)}; once they end, launch again '
        'to resubmit what did not complete')


def parser() -> cli.Parser:
  p = cli.Parser(prog='python -m experiments.sweep', description=__doc__.split('\n')[0])
  p.add_argument('--sweep', required=True,
                 help='configs/sweeps/NAME.py[:ARG], relative to the repo root or absolute')
  p.add_argument('--outdir', required=True, help='folder of the run directories and sweep.json')
  p.add_argument('--backend', choices=BACKENDS, default='local')
  p.add_argument('--dry-run', action='store_true', help='print the plan; start nothing')
  p.add_argument('--max-parallel', type=int, default=1, help='runs at a time')
  p.add_argument('--mfu', type=float, default=0.4, help='MFU assumed for the H100-hours estimate')
  p.add_argument('--nodes', type=int, default=1, help='slurm: nodes per run')
  p.add_argument('--gpus-per-node', type=int, default=0, help='slurm: GPUs (processes) per node')
  p.add_argument('--time', default='24:00:00', help='slurm: time limit per run')
  p.add_argument('--partition', default='', help='slurm: partition')
  p.add_argument('--sbatch', action='append', default=[], help='slurm: extra sbatch option')
  return p


def check_args(args: argparse.Namespace) -> slurm.Resources:
  if args.max_parallel < 1:
    raise ConfigError(f'--max-parallel: {args.max_parallel} must be at least 1')
  if not 0 < args.mfu <= 1:
    raise ConfigError(f'--mfu: {args.mfu} must be in (0, 1]')
  if args.backend == 'submitit':
    slurm.require_submitit()
    if args.sbatch:
      raise ConfigError('--sbatch: raw sbatch options apply to --backend=slurm only')
  res = slurm.Resources(args.nodes, args.gpus_per_node, args.time, args.partition,
                        tuple(args.sbatch))
  slurm.minutes(res.time)
  return res


def main(argv: list[str] | None = None) -> int:
  args = parser().parse_args(argv)
  res = check_args(args)
  sweep = runspec.load(args.sweep)
  check_outdir(sweep, args.outdir)
  print_plan(sweep, statuses_in(sweep, args.outdir), args.mfu)
  if args.backend != 'local':
    run_cluster(sweep, args, res)
    return 0
  if args.dry_run:
    return 0
  statuses, stopped_by = run_local(sweep, args.outdir, args.max_parallel)
  unfinished = sorted(name for name, s in statuses.items() if s != 'completed')
  if stopped_by is not None:
    print(f'stopped by signal {stopped_by}; launch again to resume {len(unfinished)} runs')
    return 128 + stopped_by
  if unfinished:
    print(f'{len(unfinished)} runs did not complete: {", ".join(unfinished)}; '
          f'see {args.outdir}/logs')
    return 1
  print(f'all {len(statuses)} runs completed; index in {os.path.join(args.outdir, INDEX)}')
  return 0


if __name__ == '__main__':
  try:
    sys.exit(main())
  except ConfigError as e:
    sys.exit(f'error: {e}')
