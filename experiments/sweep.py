"""Launch a sweep: every run of a sweep file, locally or on SLURM, with DIR/sweep.json as its index.

  python -m experiments.sweep --sweep=configs/sweeps/NAME.py --outdir=DIR
      [--backend=local|slurm|submitit] [--dry-run] [--max-parallel=K] [--mfu=0.4]
      [--nodes=1 --gpus-per-node=8 --tasks-per-node=T --time=24:00:00 --partition=P --sbatch=X]
  python -m experiments.sweep --status --outdir=DIR

Runs whose run.json says completed are skipped and the others resume from their checkpoints, so
a killed sweep started again finishes the study without redoing anything; on a cluster backend the
launcher says, run by run, what it resubmits and why. --dry-run prints every run's N, D, FLOPs and
share of the total, the total, and H100-hours at --mfu; it starts nothing. --status prints each
run's state from its run directory and from the scheduler. Every call rewrites the statuses in
sweep.json from the run directories.
"""

import argparse
import contextlib
import fcntl
import os
import sys

from analysis import cli
from experiments import local, runspec, slurm
from scaling import flops
from scaling.errors import ConfigError
from scaling.rundir import checkpoint_steps, read_json, write_json_atomic

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


@contextlib.contextmanager
def _index_lock(outdir: str):
  """Serialises the read-modify-writes of sweep.json (the launcher, --status, a second launcher)."""
  with open(os.path.join(outdir, INDEX + '.lock'), 'w') as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    yield


def write_index(sweep: runspec.Sweep, outdir: str, statuses: dict[str, str],
                jobs: dict[str, str] | None = None, launched: list[str] | None = None) -> None:
  """`jobs`: run name -> the scheduler job id of the runs just submitted (the others keep the one
  recorded before); `launched`: the array jobs of this launch (None keeps the recorded ones)."""
  with _index_lock(outdir):
    old = read_json(os.path.join(outdir, INDEX)) or {}
    old_jobs = {r['name']: r.get('job') for r in old.get('runs', [])}
    jobs = jobs or {}
    runs = [{'name': r.name, **r.identity(), 'status': statuses[r.name], 'N': r.n_params,
             'N_nonembedding': r.n_params_nonembedding, 'D': r.tokens, 'C': r.flops,
             'spent': r.spent, 'job': jobs.get(r.name, old_jobs.get(r.name))} for r in sweep.runs]
    index = {'format_version': 1, 'sweep': sweep.name, 'file': sweep.file,
             'convention': sweep.convention, 'runs': runs,
             'slurm_jobs': old.get('slurm_jobs', []) if launched is None else launched}
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
  print(f'{"run":<{width}} {"N":>8} {"D":>8} {"C":>10} {"share":>7} {"epochs":>7}  status')
  for r in sweep.runs:
    epochs = '-' if r.epochs is None else f'{r.epochs:.3g}'  # passes over the train split
    print(f'{r.name:<{width}} {human(r.n_params):>8} {human(r.tokens):>8} {r.flops:>10.3g} '
          f'{r.spent / total:>7.2%} {epochs:>7}  {statuses[r.name]}')
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


def run_state(outdir: str, name: str) -> dict:
  """What a run's directory says: run.json (status 'pending' without one) and `checkpoint`, the
  step of its latest checkpoint (None without one)."""
  run = read_json(os.path.join(outdir, name, 'run.json')) or {'status': 'pending'}
  saved = checkpoint_steps(os.path.join(outdir, name))
  return {**run, 'checkpoint': saved[-1] if saved else None}


def _from(state: dict) -> str:
  step = state['checkpoint']
  return f'resumes from its checkpoint at step {step}' if step else 'starts from step 0'


def reason(run: runspec.Run, state: dict, statuses: dict[str, str]) -> str:
  """Why a run is submitted again, and from where it starts."""
  status, steps = state['status'], state.get('steps', '?')
  if status == 'pending':
    if run.trunk and statuses[run.trunk] != 'completed':
      return f'not started; waits for its trunk {run.trunk}, which has not completed'
    return 'not started' + (f'; its trunk {run.trunk} has completed' if run.trunk else '')
  if status == 'preempted':
    return f'preempted (a signal: scancel, time limit or preemption) at step ' \
           f'{state["checkpoint"] or "?"} of {steps}; ' + _from(state)
  if status == 'running':
    return ('run.json says running but no job of this sweep is queued: its job was killed before '
            'the run could record how it ended; ' + _from(state))
  error = f' ({state["error"]})' if state.get('error') else ''
  return f'{status}{error}; runs again, ' + _from(state)


def recorded_jobs(outdir: str) -> list[str]:
  index = read_json(os.path.join(outdir, INDEX)) or {}
  return index.get('slurm_jobs', []) + [r['job'] for r in index.get('runs', []) if r.get('job')]


def refuse_if_queued(outdir: str) -> None:
  """One job per run directory: no launch while a job this outdir recorded is still queued."""
  jobs = recorded_jobs(outdir)
  queued = slurm.active(jobs, slurm.squeue()) if jobs else []
  if queued:
    shown = ', '.join(queued[:8]) + (f' and {len(queued) - 8} more' if len(queued) > 8 else '')
    raise ConfigError(f'--outdir: SLURM jobs {shown} of this sweep are still queued or running; '
                      f'wait for them (python -m experiments.sweep --status --outdir={outdir}), or '
                      'scancel them, before launching again')


def run_cluster(sweep: runspec.Sweep, args: argparse.Namespace, res: slurm.Resources) -> None:
  states = {r.name: run_state(args.outdir, r.name) for r in sweep.runs}
  statuses = {name: state['status'] for name, state in states.items()}
  todo = [r for r in sweep.runs if statuses[r.name] != 'completed']
  if os.path.exists(os.path.join(args.outdir, INDEX)) and not args.dry_run:
    write_index(sweep, args.outdir, statuses)
  if not todo:
    print('every run has completed; nothing to submit')
    return
  waves = slurm.waves(todo)
  print(f'{"would submit" if args.dry_run else "submitting"} {len(todo)} of {len(sweep.runs)} runs'
        + (f' in {len(waves)} waves, each once the one before has completed (a trunk that does not '
           'complete cancels the waves after it; launching again resubmits them):' if len(waves) > 1
           else ':'))
  for w, wave in enumerate(waves):
    for run in wave:
      print(f'  wave {w} {run.name}: {reason(run, states[run.name], statuses)}')
  if args.backend == 'slurm':
    scripts = slurm.scripts(sweep.name, todo, args.outdir, res, args.max_parallel)
    if args.dry_run:
      for _, path, text in scripts:
        print(f'--- {path}\n{text}', end='')
      return
    slurm.require_sbatch(args.backend)
    submissions = slurm.submit(scripts)
    os.makedirs(os.path.join(args.outdir, 'logs'), exist_ok=True)  # sbatch's --output folder
  elif args.dry_run:
    return
  else:
    slurm.require_sbatch(args.backend)
    submissions = slurm.submit_with_submitit(sweep.name, todo, args.outdir, res, args.max_parallel)
  os.makedirs(args.outdir, exist_ok=True)
  jobs, launched = {}, []
  write_index(sweep, args.outdir, statuses, launched=launched)
  try:
    for wave, ids in submissions:
      jobs.update((run.name, job) for run, job in zip(wave, ids))
      launched += sorted({slurm.base(job) for job in ids})
      write_index(sweep, args.outdir, statuses, jobs, launched)
  except ConfigError as e:
    if launched:
      raise ConfigError(f'{e}; the waves already accepted (SLURM jobs {", ".join(launched)}) are '
                        'recorded in sweep.json: launch again once they have ended to submit the '
                        'rest, or scancel them') from e
    raise
  print(f'submitted {len(todo)} runs as SLURM jobs {", ".join(launched)}; follow them with '
        f'python -m experiments.sweep --status --outdir={args.outdir}; once they have ended, '
        'launch again to resubmit what did not complete')


def print_status(outdir: str) -> None:
  """Each run's state from its run directory and from the scheduler; rewrites sweep.json's
  statuses."""
  with _index_lock(outdir) if os.path.isdir(outdir) else contextlib.nullcontext():
    index = read_json(os.path.join(outdir, INDEX))
    if index is None:
      raise ConfigError(f'--status: no {INDEX} in {outdir}; give the --outdir of a launched sweep')
    states = {r['name']: run_state(outdir, r['name']) for r in index['runs']}
    for entry in index['runs']:
      entry['status'] = states[entry['name']]['status']
    write_json_atomic(os.path.join(outdir, INDEX), index)
  queue = slurm.squeue() if recorded_jobs(outdir) else {}
  width = max(len(r['name']) for r in index['runs'])
  counts = {}
  print(f'sweep {index["sweep"]} ({index["file"]}) in {outdir}: {len(index["runs"])} runs')
  print(f'{"run":<{width}}  {"status":<10} {"checkpoint":>14}  {"job":<12} scheduler')
  for entry in index['runs']:
    state, job = states[entry['name']], entry.get('job')
    counts[state['status']] = counts.get(state['status'], 0) + 1
    step = f'{state["checkpoint"]} of {state.get("steps", "?")}' if state['checkpoint'] else '-'
    scheduler = queue.get(job, '-') if job else '-'
    if scheduler == '-' and job and state['status'] in ('running', 'pending'):
      scheduler = ('- (its job has ended: the run was killed)' if state['status'] == 'running' else
                   '- (its job ended before the run started)')
    print(f'{entry["name"]:<{width}}  {state["status"]:<10} {step:>14}  {job or "-":<12} '
          f'{scheduler}')
  queued = slurm.active(recorded_jobs(outdir), queue)
  unfinished = len(index['runs']) - counts.get('completed', 0)
  print(', '.join(f'{n} {s}' for s, n in sorted(counts.items())) + '; ' + (
      f'{len(queued)} job(s) queued or running' if queued else
      f'no job queued; launch the sweep again to finish the {unfinished} unfinished runs'
      if unfinished else 'the study is complete'))


def parser() -> cli.Parser:
  p = cli.Parser(prog='python -m experiments.sweep', description=__doc__.split('\n')[0])
  p.add_argument('--sweep', help='configs/sweeps/NAME.py[:ARG], relative to the repo root or '
                 'absolute (required unless --status)')
  p.add_argument('--outdir', required=True, help='folder of the run directories and sweep.json')
  p.add_argument('--backend', choices=BACKENDS, default='local')
  p.add_argument('--dry-run', action='store_true', help='print the plan; start nothing')
  p.add_argument('--status', action='store_true',
                 help="print each run's state, from its run directory and from the scheduler")
  p.add_argument('--max-parallel', type=int, default=1, help='runs at a time')
  p.add_argument('--mfu', type=float, default=0.4, help='MFU assumed for the H100-hours estimate')
  p.add_argument('--nodes', type=int, default=1, help='slurm: nodes per run')
  p.add_argument('--gpus-per-node', type=int, default=0, help='slurm: GPUs per node')
  p.add_argument('--tasks-per-node', type=int, default=0,
                 help='slurm: processes per node (default: one per GPU, or one on a CPU node)')
  p.add_argument('--time', default='24:00:00', help='slurm: time limit per run')
  p.add_argument('--partition', default='', help='slurm: partition')
  p.add_argument('--sbatch', action='append', default=[], help='slurm: extra sbatch option')
  return p


def check_args(args: argparse.Namespace) -> slurm.Resources:
  if not args.sweep and not args.status:
    raise ConfigError('--sweep: required; give configs/sweeps/NAME.py (or --status --outdir=DIR)')
  for flag, least in (('nodes', 1), ('gpus_per_node', 0), ('tasks_per_node', 0)):
    if getattr(args, flag) < least:
      raise ConfigError(f'--{flag.replace("_", "-")}: {getattr(args, flag)} must be at least '
                        f'{least}')
  if args.max_parallel < 1:
    raise ConfigError(f'--max-parallel: {args.max_parallel} must be at least 1')
  if not 0 < args.mfu <= 1:
    raise ConfigError(f'--mfu: {args.mfu} must be in (0, 1]')
  if args.backend == 'submitit':
    slurm.require_submitit()
    if args.sbatch:
      raise ConfigError('--sbatch: raw sbatch options apply to --backend=slurm only')
  res = slurm.Resources(nodes=args.nodes, gpus_per_node=args.gpus_per_node,
                        tasks_per_node=args.tasks_per_node, time=args.time,
                        partition=args.partition, extra=tuple(args.sbatch))
  slurm.minutes(res.time)
  return res


def launch_shape(args: argparse.Namespace, res: slurm.Resources) -> tuple[int | None, int]:
  """(devices, processes) of each run, so that the plan checks what each run checks at launch;
  None devices where this machine cannot know them (CPU nodes of a cluster)."""
  if args.backend == 'local':
    return local.machine_slots(min(args.max_parallel, len(os.sched_getaffinity(0))))[0].devices, 1
  processes = res.nodes * res.tasks
  return (res.nodes * res.gpus_per_node or None), processes


def main(argv: list[str] | None = None) -> int:
  args = parser().parse_args(argv)
  res = check_args(args)
  if args.status:
    print_status(args.outdir)
    return 0
  sweep = runspec.load(args.sweep, *launch_shape(args, res))
  check_outdir(sweep, args.outdir)
  refuse_if_queued(args.outdir)
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
