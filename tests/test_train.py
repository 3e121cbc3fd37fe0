"""The training CLI end to end: the run directory contract, resume, and bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NANO = ['--config=configs/lm.py:size=nano', '--config.steps=40', '--config.log_every=5',
        '--config.eval_every=20', '--config.checkpoint_every=10', '--config.eval_batches=2',
        '--config.seq_len=32']


def train_cmd(workdir, *args):
  return [sys.executable, '-m', 'scaling.train', f'--workdir={workdir}', *args]


def run_train(workdir, *args, env=None, check=True):
  return subprocess.run(train_cmd(workdir, *args), cwd=ROOT, capture_output=True, text=True,
                        env=env, check=check)


def rows(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


def run_json(workdir):
  with open(os.path.join(workdir, 'run.json')) as f:
    return json.load(f)


@pytest.fixture(scope='module')
def tiny_run(tmp_path_factory):
  """The README's command, exactly: the tiny LM on the embedded stdlib corpus."""
  workdir = str(tmp_path_factory.mktemp('tiny'))
  run_train(workdir, '--config=configs/lm.py:size=tiny')
  return workdir


def test_tiny_run_completes_and_eval_loss_falls_at_every_eval(tiny_run):
  evals = [r for r in rows(tiny_run) if 'eval_loss' in r]
  assert [r['step'] for r in evals] == [0, 40, 80, 120, 160, 200]
  losses = [r['eval_loss'] for r in evals]
  assert all(b < a for a, b in zip(losses, losses[1:])), losses
  assert evals[-1]['eval_bits_per_byte'] < 3.5


def test_run_json_describes_the_run(tiny_run):
  run = run_json(tiny_run)
  assert run['status'] == 'completed' and run['task'] == 'lm'
  assert run['model']['d_model'] == 128 and run['tokens_per_step'] == 16 * 128
  assert run['n_params'] > run['n_params_nonembedding'] > 0
  assert set(run['flops_per_token']) == {'kaplan', 'chinchilla'}
  assert run['mesh'] == {'data': 1, 'fsdp': 1, 'tensor': 1} and run['process_count'] == 1
  assert run['dataset']['name'] == 'stdlib' and len(run['dataset']['fingerprint']) == 64
  assert run['final']['step'] == 200 and run['wall_time_s'] > 0
  with open(os.path.join(tiny_run, 'config.json')) as f:
    assert json.load(f)['model']['n_layer'] == 4


def test_metrics_rows_count_tokens_and_flops(tiny_run):
  run = run_json(tiny_run)
  train = [r for r in rows(tiny_run) if 'train_loss' in r]
  assert [r['step'] for r in train] == list(range(10, 201, 10))
  for r in train:
    assert r['tokens'] == r['step'] * run['tokens_per_step']
    for convention, per_token in run['flops_per_token'].items():
      assert r['flops'][convention] == pytest.approx(r['tokens'] * per_token)
  timed = [r for r in train if 'tokens_per_s' in r]
  assert len(timed) >= len(train) - 1 and all(0 < r['mfu'] < 1 for r in timed)
  assert os.listdir(os.path.join(tiny_run, 'tensorboard'))
  assert os.listdir(os.path.join(tiny_run, 'checkpoints'))


def test_preempted_run_resumes_bit_exactly(tmp_path):
  straight, interrupted = str(tmp_path / 'straight'), str(tmp_path / 'interrupted')
  run_train(straight, *NANO)
  proc = subprocess.Popen(train_cmd(interrupted, *NANO), cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  metrics = os.path.join(interrupted, 'metrics.jsonl')
  while not (os.path.exists(metrics) and any('"step": 15' in l for l in open(metrics))):
    assert proc.poll() is None, 'the run ended before it could be interrupted'
    time.sleep(0.2)
  proc.send_signal(signal.SIGTERM)
  assert proc.wait(timeout=120) == 143
  assert run_json(interrupted)['status'] == 'preempted'
  run_train(interrupted, *NANO)
  assert run_json(interrupted)['status'] == 'completed'
  losses = lambda d: [(r['step'], r.get('train_loss'), r.get('eval_loss')) for r in rows(d)]
  assert losses(interrupted) == losses(straight)


def test_completed_run_is_not_redone(tmp_path):
  workdir = str(tmp_path / 'run')
  run_train(workdir, *NANO)
  before = rows(workdir)
  run_train(workdir, *NANO)
  assert rows(workdir) == before and run_json(workdir)['status'] == 'completed'


EIGHT_DEVICES = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=8')


@pytest.mark.parametrize('args,env,field', [
    (['--config.nonexistent=1'], None, 'nonexistent'),
    (['--config.model.n_head=3'], None, 'model.n_head'),
    (['--config.mesh.data=2', '--config.mesh.fsdp=2'], None, 'mesh'),
    (['--config.batch_size=12'], EIGHT_DEVICES, 'batch_size'),
    (['--config.dataset=wikipedia'], None, 'dataset'),
    (['--config.schedule=step'], None, 'schedule'),
])
def test_bad_input_is_one_line_and_a_failed_status(tmp_path, args, env, field):
  workdir = str(tmp_path / 'run')
  out = run_train(workdir, '--config=configs/lm.py:size=nano', *args, env=env, check=False)
  assert out.returncode != 0
  lines = out.stderr.strip().splitlines()
  assert len(lines) == 1 and field in lines[0] and lines[0].startswith('error:'), out.stderr
  if os.path.exists(os.path.join(workdir, 'run.json')):
    assert run_json(workdir)['status'] == 'failed'
