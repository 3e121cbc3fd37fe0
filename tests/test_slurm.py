"""The SLURM backend without a cluster: the generated sbatch scripts, run with a fake srun and
submitted with a fake sbatch, and submitit through a stand-in module."""

import contextlib
import json
import os
import subprocess
import sys
import types

import pytest

from experiments import runspec, slurm, sweep
from scaling.errors import ConfigError
from sweep_files import nano, write_sweep, wsd

RESOURCES = slurm.Resources(nodes=2, gpus_per_node=8, time='4:00:00', partition='gpu',
                            extra=('--account=abc',))
FAKE_SBATCH = 'echo "$@" >> {calls}; echo $((1000 + $(wc -l < {calls})))'  # job ids 1001, 1002


@pytest.fixture
def study(tmp_path):
  return runspec.load(write_sweep(tmp_path, wsd(40, 4, (20, 30)) + [nano('solo', budget=1e10)]))


def fake_bin(tmp_path, name: str, body: str) -> None:
  path = tmp_path / 'bin' / name
  path.parent.mkdir(exist_ok=True)
  path.write_text(f'#!/bin/bash\n{body}\n')
  path.chmod(0o755)


def test_waves_put_trunks_before_branches(study):
  assert [[r.name for r in w] for w in slurm.waves(study.runs)] == [['trunk', 'solo'],
                                                                   ['cool20', 'cool30']]


def test_a_branch_of_a_completed_trunk_starts_in_wave_0(study):
  """The relaunch of a study whose trunk completed: its branches alone (was a KeyError)."""
  todo = [r for r in study.runs if r.name != 'trunk']
  assert [[r.name for r in w] for w in slurm.waves(todo)] == [['cool20', 'cool30', 'solo']]


def test_script_header_asks_for_the_resources(study, tmp_path):
  text = slurm.script('job', study.runs[:2], str(tmp_path), RESOURCES, max_parallel=3)
  header = [line.split(None, 1)[1] for line in text.splitlines() if line.startswith('#SBATCH')]
  for option in ('--array=0-1%3', '--nodes=2', '--ntasks-per-node=8', '--gpus-per-node=8',
                 '--time=4:00:00', '--partition=gpu', '--account=abc', '--signal=TERM@120',
                 '--kill-on-invalid-dep=yes'):
    assert option in header, header
  assert subprocess.run(['bash', '-n'], input=text, text=True).returncode == 0


@pytest.mark.parametrize('gpus,tasks,expected', [(0, 0, 1), (8, 0, 8), (0, 2, 2), (8, 1, 1)])
def test_tasks_per_node(study, tmp_path, gpus, tasks, expected):
  res = slurm.Resources(gpus_per_node=gpus, tasks_per_node=tasks)
  assert f'#SBATCH --ntasks-per-node={expected}' in slurm.script(
      'job', study.runs[:1], str(tmp_path), res, 1).splitlines()


def test_each_array_task_runs_its_own_run_through_srun(study, tmp_path):
  """The script is run as SLURM would, with srun replaced by one that prints its arguments."""
  fake_bin(tmp_path, 'srun', 'printf "%s\\n" "$@"')
  env = dict(os.environ, PATH=f'{tmp_path / "bin"}:{os.environ["PATH"]}')
  text = slurm.script('job', study.runs, str(tmp_path / 'out'), RESOURCES, max_parallel=1)
  for i, run in enumerate(study.runs):
    out = subprocess.run(['bash', '-c', text], env=env | {'SLURM_ARRAY_TASK_ID': str(i)},
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ['--kill-on-bad-exit=1', sys.executable, '-m', 'scaling.train',
                   *run.args(str(tmp_path / 'out'))]


def test_submit_chains_the_waves_with_afterok(study, tmp_path, monkeypatch):
  calls = tmp_path / 'calls'
  fake_bin(tmp_path, 'sbatch', FAKE_SBATCH.format(calls=calls))
  monkeypatch.setenv('PATH', f'{tmp_path / "bin"}:{os.environ["PATH"]}')
  outdir = str(tmp_path / 'out')
  assert sweep.main([f'--sweep={study.file}', f'--outdir={outdir}', '--backend=slurm']) == 0
  lines = calls.read_text().splitlines()
  wave0, wave1 = (os.path.join(outdir, 'slurm', f'test-wave{w}.sbatch') for w in (0, 1))
  assert lines == [f'--parsable {wave0}', f'--parsable --dependency=afterok:1001 {wave1}']
  assert os.path.isdir(os.path.join(outdir, 'logs')) and os.path.exists(wave1)
  assert 'cool30' in open(wave1).read() and 'cool30' not in open(wave0).read()
  index = json.loads((tmp_path / 'out' / 'sweep.json').read_text())
  assert index['slurm_jobs'] == ['1001', '1002']
  assert {r['name']: r['job'] for r in index['runs']} == {
      'trunk': '1001_0', 'solo': '1001_1', 'cool20': '1002_0', 'cool30': '1002_1'}


def test_jobs_accepted_before_a_failed_sbatch_are_recorded(study, tmp_path, monkeypatch, capsys):
  """Wave 0 accepted, wave 1 refused: the guard must still see wave 0."""
  calls = tmp_path / 'calls'
  fake_bin(tmp_path, 'sbatch', f'[[ "$*" == *wave1* ]] && {{ echo "no such QOS" >&2; exit 1; }}; '
           + FAKE_SBATCH.format(calls=calls))
  fake_bin(tmp_path, 'squeue', 'echo "1001_0|RUNNING|None"')
  monkeypatch.setenv('PATH', f'{tmp_path / "bin"}:{os.environ["PATH"]}')
  argv = [f'--sweep={study.file}', f'--outdir={tmp_path / "out"}', '--backend=slurm']
  with pytest.raises(ConfigError, match='no such QOS; the waves already accepted .SLURM jobs 1001. '
                     'are recorded in sweep.json'):
    sweep.main(argv)
  index = json.loads((tmp_path / 'out' / 'sweep.json').read_text())
  assert index['slurm_jobs'] == ['1001']
  assert {r['name']: r['job'] for r in index['runs']} == {
      'trunk': '1001_0', 'solo': '1001_1', 'cool20': None, 'cool30': None}
  with pytest.raises(ConfigError, match='SLURM jobs 1001_0 of this sweep are still queued'):
    sweep.main(argv)


@pytest.mark.parametrize('recorded,queue,expected', [
    (['50'], ['50_0', '50_1', '7'], ['50_0', '50_1']),  # an sbatch array and its tasks
    (['50_0', '50_1'], ['50_1', '51'], ['50_1']),  # submitit's ids: task ids, as squeue -r lists
    (['50_0'], ['50_1'], []),  # another task of the same array
    (['5'], ['50_0', '55'], []),  # a prefix is not a match
    (['50'], [], [])])
def test_active_compares_ids_in_the_schedulers_form(recorded, queue, expected):
  assert slurm.active(recorded, dict.fromkeys(queue, 'RUNNING')) == expected


@pytest.mark.parametrize('backend', ['slurm', 'submitit'])
def test_missing_sbatch_is_one_line_before_anything_is_written(study, tmp_path, monkeypatch,
                                                               backend):
  monkeypatch.setenv('PATH', str(tmp_path))
  monkeypatch.setitem(sys.modules, 'submitit', types.SimpleNamespace())
  with pytest.raises(ConfigError, match=f'--backend={backend}: sbatch is not on PATH'):
    sweep.main([f'--sweep={study.file}', f'--outdir={tmp_path / "out"}', f'--backend={backend}'])
  assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('time,minutes', [
    ('90', 90), ('90:30', 91), ('4:00:00', 240), ('1:02:03', 63), ('2-00:00:00', 2880),
    ('1-12', 2160), ('1-00:30', 1470)])
def test_slurm_time_in_minutes(time, minutes):
  assert slurm.minutes(time) == minutes


def test_bad_slurm_time_is_one_line():
  with pytest.raises(ConfigError, match="--time: '4h' is not a SLURM time"):
    slurm.minutes('4h')


def fake_submitit(log: list):
  """A stand-in for submitit that records the executor's calls; batch b's jobs get ids 100b_i."""
  class Executor:
    def __init__(self, folder, cluster):
      log.append(('folder', folder, cluster))
      self.batches = 0

    def update_parameters(self, **kw):
      log.append(('params', kw))

    @contextlib.contextmanager
    def batch(self):
      self.batches += 1
      self.jobs = 0
      yield

    def submit(self, fn):
      log.append(('submit', fn.args))
      self.jobs += 1
      return types.SimpleNamespace(job_id=f'{1000 + self.batches}_{self.jobs - 1}')

  return types.SimpleNamespace(AutoExecutor=Executor)


def test_submitit_gets_the_resources_and_the_waves(study, tmp_path, monkeypatch):
  log = []
  monkeypatch.setitem(sys.modules, 'submitit', fake_submitit(log))
  outdir = str(tmp_path / 'out')
  waves = list(slurm.submit_with_submitit('test', study.runs, outdir, RESOURCES, max_parallel=2))
  assert [([r.name for r in runs], ids) for runs, ids in waves] == [
      (['trunk', 'solo'], ['1001_0', '1001_1']), (['cool20', 'cool30'], ['1002_0', '1002_1'])]
  assert log[0] == ('folder', os.path.join(outdir, 'logs', 'submitit'), 'slurm')
  params = [kw for kind, kw, *_ in log if kind == 'params']
  assert params[0] == dict(name='test', nodes=2, tasks_per_node=8, gpus_per_node=8,
                           timeout_min=240, slurm_partition='gpu', slurm_signal_delay_s=120,
                           slurm_array_parallelism=2)
  assert params[1:] == [
      {'slurm_additional_parameters': {'kill_on_invalid_dep': 'yes'}},
      {'slurm_additional_parameters': {'dependency': 'afterok:1001', 'kill_on_invalid_dep': 'yes'}}]
  submitted = [args for kind, args, *_ in log if kind == 'submit']
  assert submitted == [study.run(name).args(outdir)
                       for name in ('trunk', 'solo', 'cool20', 'cool30')]


def test_submitit_relaunch_is_refused_while_its_array_runs(study, tmp_path, monkeypatch):
  """submitit's ids are array tasks (1001_0); squeue -r lists the same form."""
  monkeypatch.setitem(sys.modules, 'submitit', fake_submitit([]))
  fake_bin(tmp_path, 'sbatch', 'exit 1')  # on PATH, never called: the stand-in submits
  fake_bin(tmp_path, 'squeue', 'echo "1001_1|RUNNING|None"; echo "1002_0|PENDING|Dependency"')
  monkeypatch.setenv('PATH', f'{tmp_path / "bin"}:{os.environ["PATH"]}')
  argv = [f'--sweep={study.file}', f'--outdir={tmp_path / "out"}', '--backend=submitit']
  assert sweep.main(argv) == 0
  with pytest.raises(ConfigError, match='SLURM jobs 1001_1, 1002_0 of this sweep are still queued'):
    sweep.main(argv)


def test_slurm_dry_run_prints_the_scripts_and_writes_nothing(study, tmp_path, capsys):
  outdir = tmp_path / 'out'
  assert sweep.main([f'--sweep={study.file}', f'--outdir={outdir}', '--backend=slurm',
                     '--dry-run']) == 0
  out = capsys.readouterr().out
  assert f'--- {outdir}/slurm/test-wave1.sbatch' in out and '#SBATCH --array=0-1%1' in out
  assert not outdir.exists()


def test_completed_runs_are_not_submitted_again(study, tmp_path, monkeypatch, capsys):
  outdir = tmp_path / 'out'
  for run in study.runs:
    (outdir / run.name).mkdir(parents=True)
    (outdir / run.name / 'run.json').write_text('{"status": "completed"}')
  monkeypatch.setenv('PATH', str(tmp_path))  # no sbatch: it must not be needed
  assert sweep.main([f'--sweep={study.file}', f'--outdir={outdir}', '--backend=slurm']) == 0
  assert 'nothing to submit' in capsys.readouterr().out
  assert not (outdir / 'slurm').exists()


def test_relaunch_waits_for_queued_jobs(study, tmp_path, monkeypatch):
  calls = tmp_path / 'calls'
  fake_bin(tmp_path, 'sbatch', FAKE_SBATCH.format(calls=calls))
  fake_bin(tmp_path, 'squeue', 'echo "1002_0|PENDING|Dependency"; '
           'echo "1002_1|PENDING|Dependency"; echo "77|RUNNING|None"')  # wave 1 still queued; 77 is someone else's
  monkeypatch.setenv('PATH', f'{tmp_path / "bin"}:{os.environ["PATH"]}')
  argv = [f'--sweep={study.file}', f'--outdir={tmp_path / "out"}', '--backend=slurm']
  assert sweep.main(argv) == 0
  with pytest.raises(ConfigError, match='SLURM jobs 1002_0, 1002_1 of this sweep are still queued'):
    sweep.main(argv)
  assert len(calls.read_text().splitlines()) == 2  # nothing submitted twice


def test_a_failing_squeue_refuses_rather_than_guesses(study, tmp_path, monkeypatch):
  fake_bin(tmp_path, 'sbatch', FAKE_SBATCH.format(calls=tmp_path / 'calls'))
  monkeypatch.setenv('PATH', f'{tmp_path / "bin"}:{os.environ["PATH"]}')
  argv = [f'--sweep={study.file}', f'--outdir={tmp_path / "out"}', '--backend=slurm']
  assert sweep.main(argv) == 0
  fake_bin(tmp_path, 'squeue', 'echo "slurm_load_jobs error: Unable to contact controller" >&2; '
           'exit 1')
  with pytest.raises(ConfigError, match='squeue failed .slurm_load_jobs error: Unable to contact '
                     'controller.*retry once squeue works'):
    sweep.main(argv)


def write_runs(outdir, **runs) -> None:
  """run.json files, and checkpoint folders up to `checkpoint`, for the named runs."""
  for name, (status, checkpoint) in runs.items():
    (outdir / name / 'checkpoints').mkdir(parents=True)
    for step in range(10, (checkpoint or 0) + 1, 10):
      (outdir / name / 'checkpoints' / str(step)).mkdir()
    (outdir / name / 'run.json').write_text(json.dumps({'status': status, 'steps': 40}))


def test_relaunch_says_what_it_resubmits_and_why(study, tmp_path, monkeypatch, capsys):
  """The trunk and solo completed, cool20 was preempted, cool30 never started (its wave was
  cancelled): both branches go in one wave, each with its reason."""
  calls = tmp_path / 'calls'
  fake_bin(tmp_path, 'sbatch', FAKE_SBATCH.format(calls=calls))
  fake_bin(tmp_path, 'squeue', 'true')
  monkeypatch.setenv('PATH', f'{tmp_path / "bin"}:{os.environ["PATH"]}')
  outdir = tmp_path / 'out'
  write_runs(outdir, trunk=('completed', 40), solo=('completed', 40), cool20=('preempted', 20))
  assert sweep.main([f'--sweep={study.file}', f'--outdir={outdir}', '--backend=slurm']) == 0
  out = capsys.readouterr().out
  assert 'submitting 2 of 4 runs:\n' in out
  assert '  wave 0 cool20: preempted (a signal: scancel, time limit or preemption) at step 20 of ' \
         '40; resumes from its checkpoint at step 20\n' in out
  assert '  wave 0 cool30: not started; its trunk trunk has completed\n' in out
  assert calls.read_text().splitlines() == [f'--parsable {outdir}/slurm/test-wave0.sbatch']
  assert json.loads((outdir / 'sweep.json').read_text())['runs'][0]['status'] == 'completed'


def test_status_reads_the_run_directories_and_the_scheduler(study, tmp_path, monkeypatch, capsys):
  fake_bin(tmp_path, 'sbatch', FAKE_SBATCH.format(calls=tmp_path / 'calls'))
  monkeypatch.setenv('PATH', f'{tmp_path / "bin"}:{os.environ["PATH"]}')
  outdir = tmp_path / 'out'
  assert sweep.main([f'--sweep={study.file}', f'--outdir={outdir}', '--backend=slurm']) == 0
  write_runs(outdir, trunk=('preempted', 30), solo=('completed', 40), cool20=('running', None))
  fake_bin(tmp_path, 'squeue', 'echo "1002_1|PENDING|DependencyNeverSatisfied"')
  capsys.readouterr()
  assert sweep.main(['--status', f'--outdir={outdir}']) == 0
  lines = [' '.join(line.split()) for line in capsys.readouterr().out.splitlines()]
  assert lines[2:] == [
      'trunk preempted 30 of 40 1001_0 -',
      'cool20 running - 1002_0 - (its job has ended: the run was killed)',
      'cool30 pending - 1002_1 PENDING (DependencyNeverSatisfied)',
      'solo completed 40 of 40 1001_1 -',
      '1 completed, 1 pending, 1 preempted, 1 running; 1 job(s) queued or running']
  index = json.loads((outdir / 'sweep.json').read_text())
  assert [r['status'] for r in index['runs']] == ['preempted', 'running', 'pending', 'completed']


def test_status_of_an_outdir_without_a_sweep_is_one_line(tmp_path):
  with pytest.raises(ConfigError, match='--status: no sweep.json in'):
    sweep.main(['--status', f'--outdir={tmp_path}'])
