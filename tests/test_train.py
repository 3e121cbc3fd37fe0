"""The training CLI end to end: the run directory contract, resume, and bad input."""

import json
import os
import shutil
import signal
import socket
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


@pytest.fixture(scope='module')
def straight(tmp_path_factory):
  """NANO, uninterrupted: the reference of the resume and repair tests (which copy it)."""
  workdir = str(tmp_path_factory.mktemp('straight') / 'run')
  run_train(workdir, *NANO)
  return workdir


def losses(workdir):
  return [(r['step'], r.get('train_loss'), r.get('eval_loss')) for r in rows(workdir)]


def copy_run(workdir, tmp_path):
  shutil.copytree(workdir, tmp_path / 'copy')
  return str(tmp_path / 'copy')


@pytest.mark.parametrize('sig, code', [(signal.SIGTERM, 143), (signal.SIGINT, 130)],
                         ids=['SIGTERM', 'SIGINT'])
def test_preempted_run_resumes_bit_exactly(tmp_path, straight, sig, code):
  """A scheduler's SIGTERM and a user's Ctrl-C both checkpoint and stop; exit 128 + signal."""
  interrupted = str(tmp_path / 'interrupted')
  proc = subprocess.Popen(train_cmd(interrupted, *NANO), cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  metrics = os.path.join(interrupted, 'metrics.jsonl')
  while not (os.path.exists(metrics) and any('"step": 15' in l for l in open(metrics))):
    assert proc.poll() is None, 'the run ended before it could be interrupted'
    time.sleep(0.2)
  proc.send_signal(sig)
  assert proc.wait(timeout=120) == code
  assert run_json(interrupted)['status'] == 'preempted'
  assert not os.path.exists(os.path.join(interrupted, 'lock.json'))
  run_train(interrupted, *NANO)
  assert run_json(interrupted)['status'] == 'completed'
  assert losses(interrupted) == losses(straight)


def test_a_signal_during_the_last_step_finishes_the_run(tmp_path, monkeypatch):
  """SIGTERM while the last step trains (a scancel that lands late): the run is trained, so it
  ends `completed` with its final values, not `preempted` at its end with nothing to resume."""
  from scaling.tasks import lm  # in process, so that the signal lands in the last step exactly
  from test_bad_inputs import run_train as run_in_process
  make_data = lm.make_data

  def signalling_data(c, *args):
    data = make_data(c, *args)
    train_batch = data.train_batch

    def train_batch_signalling_last(step):
      if step == c.steps - 1:
        os.kill(os.getpid(), signal.SIGTERM)
      return train_batch(step)
    data.train_batch = train_batch_signalling_last
    return data

  monkeypatch.setattr(lm, 'make_data', signalling_data)
  workdir = str(tmp_path / 'run')
  previous = signal.getsignal(signal.SIGTERM)
  try:
    run_in_process([f'--workdir={workdir}', *NANO])  # a preempted run would exit 143 here
  finally:
    signal.signal(signal.SIGTERM, previous)  # the trainer's handler must not outlive the test
  run = run_json(workdir)
  assert run['status'] == 'completed' and run['final']['step'] == 40, run['status']
  assert rows(workdir)[-1]['step'] == 40


def test_a_resumed_run_keeps_the_attention_kernel_it_was_trained_with(tmp_path):
  """`auto` picks the kernel of a new run; a run that recorded another one (here `xla`, as every
  CPU run did before the blocked kernel existed) resumes with it instead of being refused."""
  from scaling import precision
  assert precision.attention_kernel('auto', 'float32', 16, True, 128, 'cpu') == 'blocked'
  workdir = str(tmp_path / 'run')
  args = [a for a in NANO if not a.startswith('--config.seq_len')] + ['--config.seq_len=128']
  run_train(workdir, *args, '--config.attention=xla', '--config.steps=20')
  out = run_train(workdir, *args, check=False)  # resumes to 40 steps under `auto`
  assert out.returncode == 0, out.stderr
  with open(os.path.join(workdir, 'config.json')) as f:
    assert json.load(f)['attention'] == 'xla'
  assert run_json(workdir)['status'] == 'completed' and rows(workdir)[-1]['step'] == 40


@pytest.mark.parametrize('damage', ['lost', 'cut', 'edited'])
def test_a_lost_cut_or_edited_config_json_is_rewritten_from_the_checkpoints(tmp_path, straight,
                                                                            damage):
  """The checkpoints keep the config: a relaunch with it resumes, and config.json is the run's
  again. A relaunch with the edited value is refused, as if config.json were intact."""
  workdir = copy_run(straight, tmp_path)
  path = os.path.join(workdir, 'config.json')
  with open(path) as f:
    original = f.read()
  shutil.rmtree(os.path.join(workdir, 'checkpoints', '40'))  # as if preempted: resumes from 30
  if damage == 'lost':
    os.remove(path)
  elif damage == 'cut':
    with open(path, 'w') as f:
      f.write(original[:len(original) // 2])
  else:
    with open(path, 'w') as f:
      f.write(original.replace('"lr": 0.003', '"lr": 0.01'))
  refused = run_train(workdir, *NANO, '--config.lr=0.01', check=False)
  assert refused.returncode == 1 and 'lr (0.003 -> 0.01)' in refused.stderr, refused.stderr
  run_train(workdir, *NANO)
  with open(path) as f:
    assert f.read() == original
  assert losses(workdir) == losses(straight)


def test_completed_run_is_not_redone(tmp_path, straight):
  workdir = copy_run(straight, tmp_path)
  before = rows(workdir)
  run_train(workdir, *NANO)
  assert rows(workdir) == before and run_json(workdir)['status'] == 'completed'


def test_a_run_killed_after_its_last_checkpoint_finishes_when_relaunched(tmp_path, straight):
  """A SIGKILL after the last checkpoint, during the task's finish, leaves run.json `running`
  without `final`: the relaunch trains nothing and writes the same `final` the run would have."""
  workdir = copy_run(straight, tmp_path)
  run = run_json(workdir)
  killed = {k: v for k, v in run.items() if k != 'final'} | {'status': 'running'}
  write_json(os.path.join(workdir, 'run.json'), killed)
  before = rows(workdir)
  run_train(workdir, *NANO)
  assert run_json(workdir)['status'] == 'completed'
  assert run_json(workdir)['final'] == run['final'] and run['final']['step'] == 40
  assert rows(workdir) == before


def test_truncated_metrics_are_rewritten_to_end_like_an_uninterrupted_run(tmp_path, straight):
  """A kill mid-write cuts the last line; a crash before the page cache reached the disk can cut
  more rows: those since the checkpoint before the latest one (30) are in the latest's copy."""
  workdir = copy_run(straight, tmp_path)
  path = os.path.join(workdir, 'metrics.jsonl')
  with open(path, 'rb') as f:
    whole = f.read()
  for cut in (len(whole) - 25, whole.rfind(b'"step": 35')):
    with open(path, 'wb') as f:
      f.write(whole[:cut])
    run_train(workdir, *NANO)
    with open(path, 'rb') as f:
      assert f.read() == whole
    assert run_json(workdir)['status'] == 'completed'


def _damage_latest(workdir, how):
  step = max(int(n) for n in os.listdir(os.path.join(workdir, 'checkpoints')) if n.isdigit())
  state = os.path.join(workdir, 'checkpoints', str(step), 'state')
  if how == 'truncated array file':
    files = [os.path.join(d, f) for d, _, fs in os.walk(state) for f in fs if '/d/' in d + '/']
    biggest = max(files, key=os.path.getsize)
    os.truncate(biggest, os.path.getsize(biggest) // 2)
  else:
    os.remove(os.path.join(state, '_METADATA'))
  return step


@pytest.mark.parametrize('how', ['truncated array file', 'missing metadata'])
def test_damaged_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, straight, how):
  workdir = copy_run(straight, tmp_path)  # checkpoints at steps 30 and 40
  damaged = _damage_latest(workdir, how)
  out = run_train(workdir, *NANO)
  warnings = [l for l in out.stderr.splitlines() if l.startswith('warning:')]
  assert len(warnings) == 1 and f'checkpoint step {damaged} is damaged' in warnings[0], out.stderr
  assert 'falling back to step 30' in warnings[0]
  assert run_json(workdir)['status'] == 'completed'
  assert losses(workdir) == losses(straight)  # it went on from step 30, not from scratch
  assert os.listdir(os.path.join(workdir, 'damaged_checkpoints'))


def test_every_checkpoint_damaged_stops_rather_than_starting_over(tmp_path, straight):
  workdir = copy_run(straight, tmp_path)
  for step in (30, 40):
    state = os.path.join(workdir, 'checkpoints', str(step), 'state', '_METADATA')
    os.remove(state)
  out = run_train(workdir, *NANO, check=False)
  lines = [l for l in out.stderr.splitlines() if not l.startswith('warning:')]
  assert out.returncode != 0 and len(lines) == 1 and 'every checkpoint' in lines[0], out.stderr
  assert rows(workdir) == rows(straight) and run_json(workdir)['status'] == 'failed'
  again = run_train(workdir, *NANO, check=False)  # still refused: nothing was moved away
  assert again.returncode != 0 and 'every checkpoint' in again.stderr


def write_json(path, obj):
  with open(path, 'w') as f:
    json.dump(obj, f)


def test_second_trainer_is_refused_and_a_dead_ones_lock_is_taken_over(tmp_path):
  workdir = str(tmp_path / 'run')
  first = subprocess.Popen(train_cmd(workdir, *NANO, '--config.steps=100000',
                                     '--config.checkpoint_every=100000'), cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  lock = os.path.join(workdir, 'lock.json')
  try:
    while not os.path.exists(lock):
      assert first.poll() is None, 'the first trainer ended early'
      time.sleep(0.1)
    second = run_train(workdir, *NANO, check=False)
    lines = second.stderr.strip().splitlines()
    assert second.returncode != 0 and len(lines) == 1, second.stderr
    assert f'process {first.pid} on host {socket.gethostname()}' in lines[0]
  finally:
    first.kill()  # kill -9: no chance to unlock
    first.wait()
  assert json.load(open(lock))['pid'] == first.pid  # left behind by the dead process
  third = run_train(workdir, *NANO, '--config.steps=4', '--config.warmup_steps=1')  # nothing trained: anew
  assert f'taking over the lock of {workdir}: process {first.pid}' in third.stderr
  assert run_json(workdir)['status'] == 'completed' and not os.path.exists(lock)


@pytest.mark.parametrize('holder, taken', [
    ({'host': 'elsewhere', 'pid': 1, 'heartbeat': 0.0}, True),  # heartbeat stopped long ago
    ({'host': 'elsewhere', 'pid': 1}, False),  # another host, heartbeat fresh: may be alive
    ({'pid': os.getpid()}, False),  # this host, a live process
])
def test_lock_holders(tmp_path, holder, taken):
  from scaling import rundir
  holder = {'host': socket.gethostname(), 'heartbeat': time.time(), 'started': 0.0} | holder
  write_json(tmp_path / 'lock.json', holder)
  lock = rundir.Lock(str(tmp_path))
  if taken:
    lock.acquire()
    assert json.load(open(tmp_path / 'lock.json'))['pid'] == os.getpid()
    lock.release()
    assert not (tmp_path / 'lock.json').exists()
  else:
    with pytest.raises(rundir.ConfigError, match=f'in use by process {holder["pid"]} on host '
                       f'{holder["host"]}'):
      lock.acquire()
    assert json.load(open(tmp_path / 'lock.json')) == holder


def test_allowed_config_changes_are_recorded_and_others_refused(tmp_path, straight):
  workdir = copy_run(straight, tmp_path)
  before = rows(workdir)
  refused = run_train(workdir, *NANO, '--config.seed=1', '--config.steps=60', check=False)
  assert refused.returncode != 0 and 'seed (0 -> 1)' in refused.stderr
  assert 'steps' not in refused.stderr.split('values of')[1].split(';')[0]  # steps is allowed
  assert rows(workdir) == before and run_json(workdir)['status'] == 'completed'
  cosine = run_train(workdir, *NANO, '--config.steps=60', check=False)
  assert cosine.returncode != 0 and 'cosine learning rate of steps already trained' in cosine.stderr
  run_train(workdir, *NANO, '--config.eval_every=10', '--config.keep_checkpoints=3')
  assert run_json(workdir)['config_changes'] == [
      {'step': 40, 'fields': {'eval_every': [20, 10], 'keep_checkpoints': [2, 3]}}]


def _mesh_run(workdir, devices, mesh):
  env = dict(os.environ, XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}')
  data, fsdp, tensor = mesh
  return run_train(workdir, *NANO, '--config.steps=20', '--config.warmup_steps=2',
                   '--config.eval_every=10', f'--config.mesh.data={data}',
                   f'--config.mesh.fsdp={fsdp}', f'--config.mesh.tensor={tensor}', env=env)


def test_resume_on_another_mesh_matches_an_uninterrupted_run(tmp_path):
  """Checkpointed on 8 devices as (2,2,2), resumed from step 10 on 4 as (1,4,1): orbax restores
  the state straight into the new shardings."""
  straight = str(tmp_path / 'straight')
  _mesh_run(straight, 8, (2, 2, 2))
  moved = copy_run(straight, tmp_path)
  shutil.rmtree(os.path.join(moved, 'checkpoints', '20'))  # as if stopped after step 10
  _mesh_run(moved, 4, (1, 4, 1))
  run = run_json(moved)
  assert run['mesh'] == {'data': 1, 'fsdp': 4, 'tensor': 1} and run['status'] == 'completed'
  assert run['config_changes'] == [{'step': 10, 'fields': {
      'mesh.data': [2, 1], 'mesh.fsdp': [2, 4], 'mesh.tensor': [2, 1]}}]
  want = {(r['step'], k): r[k] for r in rows(straight) for k in ('train_loss', 'eval_loss') if k in r}
  got = {(r['step'], k): r[k] for r in rows(moved) for k in ('train_loss', 'eval_loss') if k in r}
  assert set(got) == set(want) and max(s for s, _ in got) == 20
  for key, value in want.items():
    assert got[key] == pytest.approx(value, rel=1e-4), key


@pytest.mark.parametrize('schedule, trained, new_steps, allowed', [
    ('constant', 40, 100, True),  # lr never depends on steps
    ('wsd', 30, 100, True),  # 40 steps at cooldown_fraction 0.2: the decay starts at 32
    ('wsd', 35, 100, False),  # step 32-34 already decayed
    ('cosine', 40, 100, False),  # the decay spans all steps
    ('cosine', 10, 100, True),  # still in the 20 warmup steps, where cosine is flat at progress 0
    ('constant', 40, 30, False),  # fewer steps than trained
])
def test_steps_may_change_only_where_trained_steps_keep_their_lr(schedule, trained, new_steps,
                                                                 allowed):
  from configs import lm
  from scaling import run_identity
  old = lm.get_config('size=nano')
  old.steps, old.schedule = 40, schedule
  new = lm.get_config('size=nano')
  new.steps, new.schedule = new_steps, schedule
  stored = json.loads(old.to_json_best_effort())
  changes = run_identity.config_changes(stored, json.loads(new.to_json_best_effort()))
  assert changes == {'steps': [40, new_steps]}
  if allowed:
    run_identity.check_changes(changes, stored, new, trained)
  else:
    with pytest.raises(run_identity.ConfigError, match='steps'):
      run_identity.check_changes(changes, stored, new, trained)


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
