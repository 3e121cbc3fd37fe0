"""The SLURM backends on a real scheduler: a one-node cluster on localhost (tests/slurm_cluster.py),
the launcher run as a user runs it, on both backends (sbatch and submitit).

Run with SCALING_SLURM_TESTS=1, or CI=true (`bash .ci/run` installs the cluster's packages and runs
them after `make test`); then a cluster that cannot start fails the tests instead of skipping
them. Skipped otherwise, or with SCALING_SLURM_TESTS=0. 22 trainer processes in all.

Each case is a scenario of launches, scheduler actions and relaunches. All of them start at once
on the one cluster (a thread each) and every test waits for its part, so the cluster's waits
(scheduling, SLURM's 30 s time-limit timer) overlap. The cases:
  the time limit   a trunk gets SLURM's time-limit signal (its limit cut with scontrol while it
                   trains), checkpoints and ends `preempted`; SLURM cancels the branch wave that
                   can no longer start; the relaunch resumes the trunk and finishes the study.
                   SLURM checks time limits every 30 s; meanwhile the trainer is paused with
                   SIGSTOP, so that it neither finishes nor spends CPU (SLURM sends SIGCONT with
                   its signal).
  scancel          branches scancelled mid-run after their trunk completed (each paused once it
                   trains, so that neither ends first); the relaunch (their trunk is not
                   resubmitted) resumes them and finishes the study. A plain scancel sends SIGCONT
                   and SIGTERM in two rounds, and on a loaded machine a branch woken by the first
                   can train to its end before the second; so `scancel --signal=TERM` first
                   queues SIGTERM on the paused trainers (it sends no SIGCONT), and the plain
                   scancel then wakes them to it.
  queued guard     a relaunch while the jobs are queued or running is refused, nothing submitted.
  2 tasks/node     a tiny sweep with --tasks-per-node=2: two processes per run, end to end.
"""

import concurrent.futures
import glob
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

import slurm_cluster
from sweep_files import nano, write_sweep, wsd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ('slurm', 'submitit')
WAIT_S = 420  # generous: the CI machine is small and may be shared
TRUNK_STEPS = 400

if not slurm_cluster.wanted():
  pytest.skip(slurm_cluster.SKIP, allow_module_level=True)


class Stopped(Exception):
  pass


class Scenario:
  """One case's steps against the cluster, with the failure diagnostics they need."""

  def __init__(self, cluster, tmp, backend: str, stop: threading.Event):
    self.cluster, self.tmp, self.backend, self.stop = cluster, tmp, backend, stop
    self.outdir = str(tmp / 'out')

  def launch(self, sweep_file: str, *extra: str, ok: bool = True) -> str:
    cmd = [sys.executable, '-m', 'experiments.sweep', f'--sweep={sweep_file}',
           f'--outdir={self.outdir}', f'--backend={self.backend}', '--max-parallel=2', *extra]
    out = subprocess.run(cmd, cwd=ROOT, env=self.cluster.env, capture_output=True, text=True,
                         timeout=WAIT_S)
    text = out.stdout + out.stderr
    assert (out.returncode == 0) == ok, f'{" ".join(cmd)} exited {out.returncode}:\n{text}'
    return text

  def status_table(self) -> str:
    out = subprocess.run([sys.executable, '-m', 'experiments.sweep', '--status',
                          f'--outdir={self.outdir}'], cwd=ROOT, env=self.cluster.env,
                         capture_output=True, text=True, timeout=WAIT_S)
    assert out.returncode == 0, out.stderr
    return out.stdout

  def run_json(self, name: str) -> dict:
    path = os.path.join(self.outdir, name, 'run.json')
    return json.load(open(path)) if os.path.exists(path) else {'status': 'pending'}

  def jobs(self) -> dict[str, str]:
    return {r['name']: r['job'] for r in json.load(open(f'{self.outdir}/sweep.json'))['runs']}

  def queued(self) -> list[str]:
    """This scenario's jobs that squeue still lists."""
    mine = {j.split('_')[0] for j in self.jobs().values() if j}
    out = self.cluster.run(['squeue', '--noheader', '--array', '--format=%i'])
    return [j for j in out.stdout.split() if j.split('_')[0] in mine]

  def train_step(self, name: str) -> int:
    """The last step whose training row is in metrics.jsonl (0 before the first)."""
    path = os.path.join(self.outdir, name, 'metrics.jsonl')
    rows = [json.loads(line) for line in open(path) if line.endswith('\n')] \
        if os.path.exists(path) else []
    return max([r['step'] for r in rows if 'train_loss' in r] or [0])

  def checkpoints(self, name: str) -> dict[int, float]:
    """{step: mtime} of the run's checkpoints."""
    folder = os.path.join(self.outdir, name, 'checkpoints')
    return {int(d): os.path.getmtime(os.path.join(folder, d))
            for d in (os.listdir(folder) if os.path.isdir(folder) else []) if d.isdigit()}

  def wait(self, ready, what: str, timeout: float = WAIT_S, poll_s: float = 0.5):
    end = time.time() + timeout
    while True:
      if self.stop.is_set():
        raise Stopped(what)
      value = ready()
      if value:
        return value
      if time.time() > end:
        raise AssertionError(f'{self.backend}: no {what} after {timeout:.0f} s\n{self.report()}')
      time.sleep(poll_s)

  def wait_ended(self) -> None:
    self.wait(lambda: not self.queued(), 'end of every job of the sweep')

  def report(self) -> str:
    logs = []
    for path in sorted(glob.glob(f'{self.outdir}/logs/**/*.*', recursive=True)):
      if path.endswith(('.log', '.err', '.out')):
        with open(path, errors='replace') as f:
          logs.append(f'--- {path}\n{f.read()[-1500:]}')
    squeue = self.cluster.run(['squeue', '--array'], check=False).stdout
    try:
      table = self.status_table()
    except Exception as e:  # pylint: disable=broad-except
      table = f'(--status failed: {e})'
    return f'{table}\n--- squeue\n{squeue}\n' + '\n'.join(logs)

  def assert_completed(self, names) -> None:
    statuses = {name: self.run_json(name)['status'] for name in names}
    assert set(statuses.values()) == {'completed'}, f'{statuses}\n{self.report()}'
    assert 'the study is complete' in self.status_table()  # which rewrites sweep.json's statuses
    index = json.load(open(f'{self.outdir}/sweep.json'))
    assert {r['name']: r['status'] for r in index['runs']} == statuses

  def processes(self, name: str) -> dict[int, list[str]]:
    """{pid: command line} of the processes that run scaling.train for run `name`: the trainer,
    and srun's client process under --backend=slurm (not submitit's process)."""
    workdir, found = f'--workdir={os.path.join(self.outdir, name)}', {}
    for pid in filter(str.isdigit, os.listdir('/proc')):
      try:
        with open(f'/proc/{pid}/cmdline', 'rb') as f:
          cmd = f.read().decode(errors='replace').split('\0')
      except OSError:
        continue
      if 'scaling.train' in cmd and workdir in cmd:
        found[int(pid)] = cmd
    return found

  def pause_trainer(self, name: str) -> None:
    """SIGSTOP to the scaling.train processes of run `name`."""
    paused = self.processes(name)
    assert paused, f'{self.backend}: {name} has no trainer to pause (it ended)\n{self.report()}'
    for pid in paused:
      os.kill(pid, signal.SIGSTOP)

  def sigterm_pending(self, name: str) -> bool:
    """Whether run `name`'s trainer holds a SIGTERM it has not handled (it is paused)."""
    trainers = [pid for pid, cmd in self.processes(name).items()
                if cmd[1:3] == ['-m', 'scaling.train']]
    masks = []
    for pid in trainers:
      with open(f'/proc/{pid}/status') as f:
        fields = dict(line.split(':\t', 1) for line in f.read().splitlines() if ':\t' in line)
      masks.append(int(fields['SigPnd'], 16) | int(fields['ShdPnd'], 16))
    return bool(masks) and all(m & (1 << (signal.SIGTERM - 1)) for m in masks)

  def cut_time_limit(self, job: str) -> None:
    """Lowers a running job's limit so that SLURM's signal, SIGNAL_S (120 s) before the limit,
    is due now: it comes at slurmctld's next time-limit check, within 30 s."""
    info = self.cluster.run(['scontrol', 'show', 'job', '--oneliner', job]).stdout
    run_time = re.search(r'RunTime=(?:(\d+)-)?(\d+):(\d+):(\d+)', info).groups()
    days, h, m, s = (int(x or 0) for x in run_time)
    elapsed_min = math.ceil((((days * 24 + h) * 60 + m) * 60 + s + 1) / 60)
    self.cluster.run(['scontrol', 'update', f'JobId={job}', f'TimeLimit={elapsed_min + 1}'])


# ----------------------------------------------------------------------------------------------
# The scenarios. Each yields the name of every case it has proven, in order.
# ----------------------------------------------------------------------------------------------
def time_limit_cuts_the_trunk(sc: Scenario):
  """A WSD study whose trunk is cut short by the time limit, then relaunched to the end."""
  study = [nano('trunk', overrides={'steps': TRUNK_STEPS, 'schedule': 'constant',
                                    'checkpoint_every': 100, 'keep_checkpoints': 10,
                                    'log_every': 10, 'eval_every': 1000})]
  study += [nano(f'cool{s}', fork={'trunk': 'trunk', 'step': s}, overrides={
      'steps': s + 5, 'schedule': 'wsd', 'cooldown_fraction': 5 / (s + 5)}) for s in (100, 200)]
  sweep_file = write_sweep(sc.tmp, study, name='limit')
  sc.launch(sweep_file, '--time=30')
  sc.wait(lambda: sc.train_step('trunk') >= 10, 'training row of the trunk')
  sc.pause_trainer('trunk')
  jobs = sc.jobs()
  refused = sc.launch(sweep_file, '--time=30', ok=False)
  assert (f'SLURM jobs {", ".join(sorted(jobs.values()))} of this sweep are still queued or '
          'running') in refused, refused
  assert sc.jobs() == jobs and sorted(sc.queued()) == sorted(jobs.values())  # nothing new
  yield 'queued_guard'

  trunk_job, branch_jobs = jobs['trunk'], [jobs[f'cool{s}'] for s in (100, 200)]
  sc.cut_time_limit(trunk_job)
  sc.wait(lambda: sc.run_json('trunk')['status'] != 'running', 'end of the trunk')
  trunk = sc.run_json('trunk')
  step = max(sc.checkpoints('trunk'))
  assert trunk['status'] == 'preempted' and 10 < step < TRUNK_STEPS, (trunk['status'], step)
  sc.wait_ended()  # the branch wave, which can no longer start, is cancelled by SLURM
  for job in branch_jobs:
    info = sc.cluster.run(['scontrol', 'show', 'job', '--oneliner', job]).stdout
    assert 'JobState=CANCELLED' in info, info
  assert {sc.run_json(f'cool{s}')['status'] for s in (100, 200)} == {'pending'}
  yield 'time_limit'

  saved = sc.checkpoints('trunk')
  relaunch = sc.launch(sweep_file, '--time=30')
  assert (f'wave 0 trunk: preempted (a signal: scancel, time limit or preemption) at step {step} '
          f'of {TRUNK_STEPS}; resumes from its checkpoint at step {step}') in relaunch, relaunch
  assert 'wave 1 cool100: not started; waits for its trunk trunk' in relaunch, relaunch
  sc.wait_ended()
  sc.assert_completed(['trunk', 'cool100', 'cool200'])
  after = sc.checkpoints('trunk')
  assert after[step] == saved[step] and max(after) == TRUNK_STEPS  # resumed, not retrained
  yield 'trunk_cut_short'


def scancel_cuts_the_branches(sc: Scenario):
  """A WSD study whose branches are scancelled mid-run after the trunk completed."""
  cooldown = 300  # steps left once a branch is paused: time for the test to pause it
  study = wsd(40, 4, (20, 30), cooldown=cooldown)
  for spec in study[1:]:
    spec['overrides'].update(log_every=20, eval_every=1000, checkpoint_every=1000)
  sweep_file = write_sweep(sc.tmp, study, name='branches')
  sc.launch(sweep_file)
  # Each branch is paused as soon as it trains, both watched at once: a branch left running while
  # the test waits for the other can finish before the scancel reaches it.
  running = {'cool20', 'cool30'}

  def pause_those_training() -> bool:
    for b in sorted(running):
      if sc.train_step(b) >= int(b[4:]) + 20:
        sc.pause_trainer(b)
        running.discard(b)
    return not running
  sc.wait(pause_those_training, 'training rows of both branches', poll_s=0.1)
  assert sc.run_json('trunk')['status'] == 'completed'
  wave1 = sc.jobs()['cool20'].split('_')[0]
  sc.cluster.run(['scancel', '--signal=TERM', wave1])  # queued on the paused trainers
  sc.wait(lambda: all(sc.sigterm_pending(b) for b in ('cool20', 'cool30')),
          'SIGTERM queued on both paused branches')
  sc.cluster.run(['scancel', wave1])  # its SIGCONT wakes them to the SIGTERM they hold
  sc.wait_ended()
  steps = {}
  for b in ('cool20', 'cool30'):
    run = sc.run_json(b)
    steps[b] = max(sc.checkpoints(b))
    assert run['status'] == 'preempted' and steps[b] < int(b[4:]) + cooldown, (b, run['status'])
  relaunch = sc.launch(sweep_file)
  assert 'submitting 2 of 3 runs:' in relaunch, relaunch  # the trunk is not resubmitted
  for b in ('cool20', 'cool30'):
    assert (f'wave 0 {b}: preempted (a signal: scancel, time limit or preemption) at step '
            f'{steps[b]} of {int(b[4:]) + cooldown}; resumes from its checkpoint at step '
            f'{steps[b]}') in relaunch, relaunch
  sc.wait_ended()
  sc.assert_completed(['trunk', 'cool20', 'cool30'])
  yield 'scancel_branches'


def two_tasks_per_node(sc: Scenario):
  """A tiny sweep, end to end, its run as 2 processes joined by jax.distributed (one run: the
  other cases run whole studies end to end too)."""
  sweep_file = write_sweep(sc.tmp, [nano('a', overrides={'steps': 10})], name='tasks')
  sc.launch(sweep_file, '--tasks-per-node=2')
  sc.wait_ended()
  sc.assert_completed(['a'])
  assert sc.run_json('a')['process_count'] == 2
  if sc.backend == 'submitit':  # its logs in DIR/logs/submitit/, nowhere else
    assert os.listdir(os.path.join(sc.outdir, 'logs')) == ['submitit']
    assert not os.path.exists(os.path.join(sc.outdir, 'submitit'))
    assert glob.glob(os.path.join(sc.outdir, 'logs', 'submitit', '*_log.err'))
  yield 'two_tasks_per_node'


SCENARIOS = {'time_limit_cuts_the_trunk': time_limit_cuts_the_trunk,
             'scancel_cuts_the_branches': scancel_cuts_the_branches,
             'two_tasks_per_node': two_tasks_per_node}
CASES = {'queued_guard': 'time_limit_cuts_the_trunk', 'time_limit': 'time_limit_cuts_the_trunk',
         'trunk_cut_short': 'time_limit_cuts_the_trunk',
         'scancel_branches': 'scancel_cuts_the_branches',
         'two_tasks_per_node': 'two_tasks_per_node'}


def _drive(sc: Scenario, scenario, cases: dict) -> None:
  try:
    for case in scenario:
      cases[case].set_result(True)
  except BaseException as e:  # pylint: disable=broad-except
    if not isinstance(e, Stopped) and '--- squeue' not in str(e):  # add the diagnostics once
      e = AssertionError(f'{sc.backend}: {type(e).__name__}: {e}\n{sc.report()}')
    for future in cases.values():
      if not future.done():
        future.set_exception(e)


@pytest.fixture(scope='module')
def cases(tmp_path_factory):
  """(backend, case) -> a future that holds once the case has been proven."""
  if os.geteuid() != 0 or slurm_cluster.missing():
    pytest.fail(f'the real-SLURM tests need root and {", ".join(slurm_cluster.missing())}; '
                'apt-get install slurm-wlm munge (bash .ci/run does)')
  try:
    import submitit  # pylint: disable=import-outside-toplevel,unused-import
  except ImportError:
    pytest.fail("the real-SLURM tests need submitit; pip install '.[slurm]'")
  stop = threading.Event()
  with slurm_cluster.Cluster.start() as cluster:
    futures, threads = {}, []
    for backend in BACKENDS:
      for name, scenario in SCENARIOS.items():
        mine = {case: concurrent.futures.Future() for case, s in CASES.items() if s == name}
        futures.update({(backend, case): f for case, f in mine.items()})
        sc = Scenario(cluster, tmp_path_factory.mktemp(f'{backend}-{name}'), backend, stop)
        threads.append(threading.Thread(target=_drive, args=(sc, scenario(sc), mine), daemon=True))
    for t in threads:
      t.start()
    yield futures
    stop.set()
    for t in threads:
      t.join(timeout=60)


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('case', list(CASES))
def test_on_a_real_cluster(cases, backend, case):
  cases[backend, case].result(timeout=2 * WAIT_S)
