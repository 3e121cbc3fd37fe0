"""The SLURM backend: one `sbatch --array` job per wave of runs, one array task per run.

Wave 0 holds the runs that start from scratch; wave w the branches whose trunk is in wave w-1,
submitted with --dependency=afterok on the wave before (a branch needs its trunk's checkpoint).
Each array task is `srun python -m scaling.train ...` over --nodes nodes with one process per GPU;
with more than one task, every process calls jax.distributed.initialize(), which reads SLURM's
variables. SLURM sends SIGTERM two minutes before the time limit: the run checkpoints and stops,
and launching the sweep again resumes it.
"""

import dataclasses
import os
import shlex
import shutil
import subprocess
import sys

from experiments.runspec import ROOT, Run
from scaling.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Resources:
  nodes: int = 1
  gpus_per_node: int = 0  # 0: one CPU process per node
  time: str = '24:00:00'
  partition: str = ''
  extra: tuple[str, ...] = ()  # further sbatch options, e.g. '--account=abc'


def waves(runs: list[Run]) -> list[list[Run]]:
  depth = {}
  for run in runs:  # sweep order lists every trunk before its branches
    depth[run.name] = 0 if run.trunk is None else depth[run.trunk] + 1
  return [[r for r in runs if depth[r.name] == d] for d in range(max(depth.values()) + 1)]


def _header(job: str, n: int, outdir: str, res: Resources, max_parallel: int) -> list[str]:
  tasks = max(res.gpus_per_node, 1)
  lines = [f'--job-name={job}', f'--array=0-{n - 1}%{max_parallel}', f'--nodes={res.nodes}',
           f'--ntasks-per-node={tasks}', f'--time={res.time}',
           f'--output={os.path.join(outdir, "logs", "%x-%A-%a.log")}', '--open-mode=append',
           '--signal=TERM@120', '--requeue']
  if res.gpus_per_node:
    lines.append(f'--gpus-per-node={res.gpus_per_node}')
  if res.partition:
    lines.append(f'--partition={res.partition}')
  return ['#!/bin/bash'] + [f'#SBATCH {line}' for line in lines + list(res.extra)]


def script(job: str, runs: list[Run], outdir: str, res: Resources, max_parallel: int) -> str:
  """The sbatch script of one wave: array task i runs runs[i]."""
  cases = [f'  {i}) ARGS=({" ".join(shlex.quote(a) for a in run.args(outdir))}) ;;'
           for i, run in enumerate(runs)]
  train = f'{shlex.quote(sys.executable)} -m scaling.train'
  body = ['set -euo pipefail', f'cd {shlex.quote(ROOT)}', 'case "$SLURM_ARRAY_TASK_ID" in',
          *cases, 'esac', f'srun --kill-on-bad-exit=1 {train} "${{ARGS[@]}}"']
  return '\n'.join(_header(job, len(runs), outdir, res, max_parallel) + body) + '\n'


def scripts(name: str, runs: list[Run], outdir: str, res: Resources,
            max_parallel: int) -> list[tuple[str, str]]:
  """(path, text) of each wave's script, in submission order."""
  out = []
  for w, wave in enumerate(waves(runs)):
    job = f'{name}-wave{w}'
    out.append((os.path.join(outdir, 'slurm', f'{job}.sbatch'),
                script(job, wave, outdir, res, max_parallel)))
  return out


def require_sbatch() -> None:
  if not shutil.which('sbatch'):
    raise ConfigError('--backend=slurm: sbatch is not on PATH; run on a SLURM login node, or use '
                      '--backend=local')


def submit(paths: list[str]) -> list[str]:
  """sbatch each script, each after the one before has succeeded; returns the job ids."""
  ids = []
  for path in paths:
    after = [f'--dependency=afterok:{ids[-1]}'] if ids else []
    out = subprocess.run(['sbatch', '--parsable', *after, path], capture_output=True, text=True)
    if out.returncode:
      raise ConfigError(f'sbatch {path} failed: {" ".join(out.stderr.split())}')
    ids.append(out.stdout.strip().split(';')[0])
  return ids


def active(job_ids: list[str]) -> list[str]:
  """The jobs among job_ids that SLURM still has queued or running (an array counts as one)."""
  if not job_ids or not shutil.which('squeue'):
    return []
  out = subprocess.run(['squeue', '-h', '-o', '%i', '-j', ','.join(job_ids)], capture_output=True,
                       text=True)  # fails once no job of the list is known any more
  listed = {line.split('_')[0] for line in out.stdout.split()} if out.returncode == 0 else set()
  return sorted(listed & set(job_ids))


def write(scripts_: list[tuple[str, str]]) -> list[str]:
  for path, text in scripts_:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
      f.write(text)
  return [path for path, _ in scripts_]


def minutes(time: str) -> int:
  """A SLURM time limit (M, M:S, H:M:S, D-H, D-H:M or D-H:M:S) in whole minutes, rounded up."""
  days, _, clock = time.rpartition('-')
  try:
    parts = [int(p) for p in clock.split(':')]
    if days:  # after a day count the clock reads H, H:M or H:M:S
      h, m, s = (parts + [0, 0])[:3]
    else:
      h, m, s = {1: [0, *parts, 0], 2: [0, *parts], 3: parts}[len(parts)]
    return int(days or 0) * 1440 + h * 60 + m + (s > 0)
  except (ValueError, KeyError):
    raise ConfigError(f'--time: {time!r} is not a SLURM time; use e.g. 90, 4:00:00 or 2-00:00:00') \
        from None


def require_submitit():
  try:
    import submitit  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise ConfigError('--backend=submitit: submitit is not installed; pip install submitit, or use '
                      '--backend=slurm') from None
  return submitit


def submit_with_submitit(name: str, runs: list[Run], outdir: str, res: Resources,
                         max_parallel: int) -> list[str]:
  """The same waves through submitit: one job per run, each wave after the one before."""
  submitit = require_submitit()
  executor = submitit.AutoExecutor(folder=os.path.join(outdir, 'submitit'))
  executor.update_parameters(name=name, nodes=res.nodes, tasks_per_node=max(res.gpus_per_node, 1),
                             gpus_per_node=res.gpus_per_node, timeout_min=minutes(res.time),
                             slurm_partition=res.partition or None, slurm_signal_delay_s=120,
                             slurm_array_parallelism=max_parallel)
  ids = []
  for wave in waves(runs):
    after = {'dependency': 'afterok:' + ':'.join(ids)} if ids else {}
    executor.update_parameters(slurm_additional_parameters=after)
    with executor.batch():
      jobs = [executor.submit(submitit.helpers.CommandFunction(
          [sys.executable, '-m', 'scaling.train', *run.args(outdir)], cwd=ROOT)) for run in wave]
    ids += [job.job_id for job in jobs]
  return ids
