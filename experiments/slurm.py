"""The SLURM backends: `sbatch --array` scripts (--backend=slurm) or submitit (--backend=submitit).
One array job per wave of runs, one array task per run.

Waves. Wave 0 holds every run that can start now: runs from scratch, and branches whose trunk has
already completed. Wave w holds the branches whose trunk is in wave w-1, submitted with
--dependency=afterok on wave w-1 and --kill-on-invalid-dep=yes: when a trunk does not complete
(preempted, cancelled, failed), SLURM cancels the waves after it instead of leaving them pending
forever (DependencyNeverSatisfied), and launching the sweep again resubmits them.

Processes. Each task runs scaling.train over --nodes nodes with --tasks-per-node processes per
node (default: one per GPU, or one on a CPU node). With more than one process, every process
calls jax.distributed.initialize(), which reads SLURM's variables.

Signals. SLURM signals a run two minutes before its time limit: SIGTERM to the trainer (sbatch),
or SIGUSR2, forwarded as SIGTERM (submitit, experiments/submitit_job.py); scancel sends SIGTERM.
The trainer checkpoints, marks run.json `preempted` and exits 143; launching again resumes it.

Job ids are kept in the form squeue prints them: `JOB_TASK` for array task TASK of array JOB.
"""

import dataclasses
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator

from experiments.runspec import ROOT, Run
from scaling.errors import ConfigError

SIGNAL_S = 120  # seconds before the time limit at which SLURM signals the run


@dataclasses.dataclass(frozen=True)
class Resources:
  nodes: int = 1
  gpus_per_node: int = 0
  tasks_per_node: int = 0  # processes per node; 0: one per GPU, or one on a CPU node
  time: str = '24:00:00'
  partition: str = ''
  extra: tuple[str, ...] = ()  # further sbatch options, e.g. '--account=abc'

  @property
  def tasks(self) -> int:
    return self.tasks_per_node or max(self.gpus_per_node, 1)


def waves(runs: list[Run]) -> list[list[Run]]:
  """Runs grouped by how many of their ancestors are among `runs` (sweep order lists every trunk
  before its branches). A branch whose trunk is not among them (it has completed) is in wave 0."""
  depth = {}
  for run in runs:
    depth[run.name] = depth[run.trunk] + 1 if run.trunk in depth else 0
  return [[r for r in runs if depth[r.name] == d] for d in range(max(depth.values()) + 1)]


def base(job_id: str) -> str:
  """The array job of an array task id (`50_3` -> `50`); a plain job id is its own."""
  return job_id.split('_')[0]


def _header(job: str, n: int, outdir: str, res: Resources, max_parallel: int) -> list[str]:
  lines = [f'--job-name={job}', f'--array=0-{n - 1}%{max_parallel}', f'--nodes={res.nodes}',
           f'--ntasks-per-node={res.tasks}', f'--time={res.time}',
           f'--output={os.path.join(os.path.abspath(outdir), "logs", "%x-%A-%a.log")}',
           '--open-mode=append', f'--signal=TERM@{SIGNAL_S}', '--requeue',
           '--kill-on-invalid-dep=yes']
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
            max_parallel: int) -> list[tuple[list[Run], str, str]]:
  """(runs, path, text) of each wave's script, in submission order."""
  out = []
  for w, wave in enumerate(waves(runs)):
    job = f'{name}-wave{w}'
    out.append((wave, os.path.join(outdir, 'slurm', f'{job}.sbatch'),
                script(job, wave, outdir, res, max_parallel)))
  return out


def require_sbatch(backend: str) -> None:
  if not shutil.which('sbatch'):
    raise ConfigError(f'--backend={backend}: sbatch is not on PATH; run on a SLURM login node, or '
                      'use --backend=local')


def submit(waves_: list[tuple[list[Run], str, str]]) -> Iterator[tuple[list[Run], list[str]]]:
  """Writes and sbatches each wave's script after the one before; yields (runs, their job ids)
  as soon as sbatch accepts a wave, so the caller records them even if a later sbatch fails."""
  previous = None
  for runs, path, text in waves_:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
      f.write(text)
    after = [f'--dependency=afterok:{previous}'] if previous else []
    out = subprocess.run(['sbatch', '--parsable', *after, path], capture_output=True, text=True)
    if out.returncode:
      raise ConfigError(f'sbatch {path} failed: {" ".join(out.stderr.split())}')
    previous = out.stdout.strip().split(';')[0]
    yield runs, [f'{previous}_{i}' for i in range(len(runs))]


def squeue() -> dict[str, str]:
  """{job id: 'STATE (reason)'} of the user's jobs SLURM still holds, one line per array task."""
  if not shutil.which('squeue'):
    return {}
  out = subprocess.run(['squeue', '--me', '--array', '--noheader', '--format=%i|%T|%r'],
                       capture_output=True, text=True)
  if out.returncode:
    raise ConfigError(f'squeue failed ({" ".join(out.stderr.split())}), so whether jobs of this '
                      'sweep are still queued is unknown; retry once squeue works')
  jobs = {}
  for line in out.stdout.splitlines():
    job, state, reason = (line.split('|') + ['', ''])[:3]
    jobs[job.strip()] = state if reason in ('', 'None') else f'{state} ({reason})'
  return jobs


def active(job_ids: list[str], queue: dict[str, str]) -> list[str]:
  """The ids in `queue` (squeue's) that belong to job_ids: the same task, or any task of an array
  job_ids names (`50` covers `50_0`, `50_1`, ...; `50_1` covers only itself)."""
  ids = set(job_ids)
  return sorted(q for q in queue if q in ids or base(q) in ids)


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
    raise ConfigError("--backend=submitit: submitit is not installed; pip install '.[slurm]', or "
                      'use --backend=slurm') from None
  return submitit


def submit_with_submitit(name: str, runs: list[Run], outdir: str, res: Resources,
                         max_parallel: int) -> Iterator[tuple[list[Run], list[str]]]:
  """The same waves through submitit, one array per wave; yields (runs, job ids) per wave. Logs
  and submitit's pickles go to DIR/logs/submitit/."""
  submitit = require_submitit()
  from experiments.submitit_job import Train  # pylint: disable=import-outside-toplevel
  executor = submitit.AutoExecutor(folder=os.path.join(outdir, 'logs', 'submitit'),
                                   cluster='slurm')
  gpus = {'gpus_per_node': res.gpus_per_node} if res.gpus_per_node else {}  # no GRES on CPU nodes
  executor.update_parameters(name=name, nodes=res.nodes, tasks_per_node=res.tasks, **gpus,
                             timeout_min=minutes(res.time), slurm_partition=res.partition or None,
                             slurm_signal_delay_s=SIGNAL_S, slurm_array_parallelism=max_parallel)
  previous = []
  for wave in waves(runs):
    after = {'dependency': 'afterok:' + ':'.join(previous)} if previous else {}
    executor.update_parameters(
        slurm_additional_parameters={**after, 'kill_on_invalid_dep': 'yes'})
    try:
      with executor.batch():
        jobs = [executor.submit(Train(run.args(outdir), ROOT)) for run in wave]
    except Exception as e:  # submitit raises its own errors for a refused sbatch
      raise ConfigError(f'submitit could not submit: {" ".join(str(e).split())[:500]}') from e
    ids = [job.job_id for job in jobs]
    previous = sorted({base(i) for i in ids})
    yield wave, ids
