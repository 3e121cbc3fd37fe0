"""The SLURM backend without a cluster: the generated sbatch scripts, run with a fake srun and
submitted with a fake sbatch, and submitit through a stand-in module."""

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


def test_script_header_asks_for_the_resources(study, tmp_path):
  text = slurm.script('job', study.runs[:2], str(tmp_path), RESOURCES, max_parallel=3)
  header = [line.split(None, 1)[1] for line in text.splitlines() if line.startswith('#SBATCH')]
  for option in ('--array=0-1%3', '--nodes=2', '--ntasks-per-node=8', '--gpus-per-node=8',
                 '--time=4:00:00', '--partition=gpu', '--account=abc', '--signal=TERM@120'):
    assert option in header, header
  assert subprocess.run(['bash', '-n'], input=text, text=True).returncode == 0


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
  fake_bin(tmp_path, 'sbatch', f'echo "$@" >> {calls}; echo $((1000 + $(wc -l < {calls})))')
  monkeypatch.setenv('PATH', f'{tmp_path / "bin"}:{os.environ["PATH"]}')
  outdir = str(tmp_path / 'out')
  assert sweep.main([f'--sweep={study.file}', f'--outdir={outdir}', '--backend=slurm']) == 0
  lines = calls.read_text().splitlines()
  wave0, wave1 = (os.path.join(outdir, 'slurm', f'test-wave{w}.sbatch') for w in (0, 1))
  assert lines == [f'--parsable {wave0}', f'--parsable --dependency=afterok:1001 {wave1}']
  assert os.path.isdir(os.path.join(outdir, 'logs')) and os.path.exists(wave1)
  assert 'cool30' in open(wave1).read() and 'cool30' not in open(wave0).read()


def test_missing_sbatch_is_one_line_before_anything_is_written(study, tmp_path, monkeypatch):
  monkeypatch.setenv('PATH', str(tmp_path))
  with pytest.raises(ConfigError, match='sbatch is not on PATH'):
    sweep.main([f'--sweep={study.file}', f'--outdir={tmp_path / "out"}', '--backend=slurm'])
  assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('time,minutes', [
    ('90', 90), ('90:30', 91), ('4:00:00', 240), ('1:02:03', 63), ('2-00:00:00', 2880),
    ('1-12', 2160), ('1-00:30', 1470)])
def test_slurm_time_in_minutes(time, minutes):
  assert slurm.minutes(time) == minutes


def test_bad_slurm_time_is_one_line():
  with pytest.raises(ConfigError, match="--time: '4h' is not a SLURM time"):
    slurm.minutes('4h')


def test_submitit_gets_the_resources_and_the_waves(study, tmp_path, monkeypatch):
  log = []

  class Executor:
    def __init__(self, folder):
      log.append(('folder', folder))

    def update_parameters(self, **kw):
      log.append(('params', kw))

    def submit(self, fn):
      log.append(('submit', fn.command))
      return types.SimpleNamespace(job_id=str(len([e for e in log if e[0] == 'submit'])))

  class Batch:
    def __enter__(self):
      return None

    def __exit__(self, *exc):
      return False

  Executor.batch = lambda self: Batch()
  command = lambda cmd, cwd: types.SimpleNamespace(command=cmd)
  fake = types.SimpleNamespace(AutoExecutor=Executor, helpers=types.SimpleNamespace(
      CommandFunction=command))
  monkeypatch.setitem(sys.modules, 'submitit', fake)
  outdir = str(tmp_path / 'out')
  ids = slurm.submit_with_submitit('test', study.runs, outdir, RESOURCES, max_parallel=2)
  assert ids == ['1', '2', '3', '4']
  params = [kw for kind, kw in log if kind == 'params']
  assert params[0] == dict(name='test', nodes=2, tasks_per_node=8, gpus_per_node=8,
                           timeout_min=240, slurm_partition='gpu', slurm_signal_delay_s=120,
                           slurm_array_parallelism=2)
  assert params[1:] == [{'slurm_additional_parameters': {}},
                        {'slurm_additional_parameters': {'dependency': 'afterok:1:2'}}]
  submitted = [cmd for kind, cmd in log if kind == 'submit']
  assert submitted == [[sys.executable, '-m', 'scaling.train', *study.run(name).args(outdir)]
                       for name in ('trunk', 'solo', 'cool20', 'cool30')]


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
  fake_bin(tmp_path, 'sbatch', f'echo "$@" >> {calls}; echo $((1000 + $(wc -l < {calls})))')
  fake_bin(tmp_path, 'squeue', 'echo 1002_0; echo 1002_1; echo 77')  # wave 1 still queued
  monkeypatch.setenv('PATH', f'{tmp_path / "bin"}:{os.environ["PATH"]}')
  argv = [f'--sweep={study.file}', f'--outdir={tmp_path / "out"}', '--backend=slurm']
  assert sweep.main(argv) == 0
  with pytest.raises(ConfigError, match='SLURM jobs 1002 of this sweep are still queued'):
    sweep.main(argv)
  assert len(calls.read_text().splitlines()) == 2  # nothing submitted twice
