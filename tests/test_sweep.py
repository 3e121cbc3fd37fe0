"""Sweep files resolved into runs, the dry-run plan, bad input, and the local backend end to end."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from experiments import local, runspec, sweep
from scaling.errors import ConfigError
from sweep_files import nano, write_sweep, wsd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# nano at seq_len 32 and batch 16: 512 tokens a step. Its parameters by hand (d=32, V=256, 2
# layers, d_ff=128): a layer has 4*32*32 + 2*32*128 + 2*32 = 12352, so 2*12352 + 32 = 24736
# non-embedding, plus 2*256*32 = 16384 for the embedding and unembedding tables.
NANO_PARAMS = 24736 + 16384
def test_budget_sets_steps_so_flops_match_the_budget(tmp_path):
  from scaling.flops import lm_train_flops_per_token
  from configs import lm
  c = lm.get_config('size=nano')
  c.seq_len = 32
  per_token = lm_train_flops_per_token(c.model)['chinchilla']
  budget = 1e10
  study = runspec.load(write_sweep(tmp_path, [nano('a', budget=budget)]))
  run = study.runs[0]
  expected = round(budget / (per_token * 16 * 32))
  assert run.overrides['steps'] == expected and run.tokens == expected * 512
  assert abs(run.flops - budget) <= per_token * 512 / 2  # within half a step
  assert run.n_params == NANO_PARAMS


def test_tokens_per_param_sets_steps(tmp_path):
  study = runspec.load(write_sweep(tmp_path, [nano('a', tokens_per_param=20)]))
  assert study.runs[0].overrides['steps'] == round(20 * NANO_PARAMS / 512)


def test_branch_counts_its_trunk_and_spends_only_the_cooldown(tmp_path):
  study = runspec.load(write_sweep(tmp_path, wsd(40, 4, (20,))))
  b = study.run('cool20')
  assert b.trunk == 'trunk' and b.overrides['init_step'] == 20
  assert b.tokens == 25 * 512 and b.spent == pytest.approx(b.flops * 5 / 25)
  assert f'--config.init_from={tmp_path / "out" / "trunk"}' in b.args(str(tmp_path / 'out'))


def test_retained_checkpoints_by_hand():
  from configs import lm
  c = lm.get_config('size=nano')
  c.steps, c.checkpoint_every, c.keep_checkpoints = 45, 10, 3
  assert runspec.retained_checkpoints(c) == [30, 40, 45]  # saved: 10, 20, 30, 40 and the last


def test_dry_run_prints_every_run_its_share_and_h100_hours(tmp_path, capsys):
  runs = [nano('small', budget=1e10), nano('big', budget=3e10)]
  path = write_sweep(tmp_path, runs)
  assert sweep.main([f'--sweep={path}', f'--outdir={tmp_path / "out"}', '--dry-run',
                     '--mfu=0.5']) == 0
  out = capsys.readouterr().out
  study = runspec.load(path)
  total = sum(r.flops for r in study.runs)
  shares = [line.split()[4] for line in out.splitlines() if line.startswith(('small ', 'big '))]
  assert [float(s.rstrip('%')) for s in shares] == pytest.approx(
      [100 * r.flops / total for r in study.runs], abs=0.01)
  assert f'total {total:.3g} FLOPs = {total / (989e12 * 0.5) / 3600:.4g} H100-hours' in out
  assert not (tmp_path / 'out').exists()


def test_chinchilla_plan_dry_run(capsys, tmp_path):
  from scaling.data import prepare
  (tmp_path / 'text').mkdir()
  for i in range(40):
    (tmp_path / 'text' / f'{i}.txt').write_text(f'doc {i} ' * 100)
  prepare.prepare(f'textdir:{tmp_path / "text"}', 'byte', str(tmp_path / 'tokens'), workers=1,
                  progress=False)
  # The plan needs a prepared corpus; a toy one with repeats allowed: the table is under test.
  path = (os.path.join(ROOT, 'configs/sweeps/chinchilla_plan.py')
          + f':dataset=tokens:{tmp_path / "tokens"},max_epochs=1e15')
  assert sweep.main([f'--sweep={path}', '--outdir=/nonexistent/plan', '--dry-run']) == 0
  out = capsys.readouterr().out
  study = runspec.load(path)
  budgets = sorted({r.name.split('-')[0] for r in study.runs})
  assert len(budgets) == 9
  expected_total = sum(r.flops for r in study.runs)
  assert f'total {expected_total:.3g} FLOPs' in out and 'H100-hours at 40% MFU' in out
  assert min(r.flops for r in study.runs) == pytest.approx(6e18, rel=0.01)
  assert max(r.flops for r in study.runs) == pytest.approx(3e21, rel=0.01)


@pytest.mark.parametrize('runs,words', [
    ([], 'defines no runs'),
    ([nano('a', budget=1e5)], 'less than one training step'),
    ([nano('a', overrides={'model.width': 3})], "unknown config field 'model.width'"),
    ([nano('a', budget=1e10, overrides={'steps': 5})], 'budget and overrides.steps'),
    ([nano('a'), nano('a')], "run name 'a'"),
    ([nano('t', overrides={'steps': 40, 'checkpoint_every': 10}),
      nano('b', fork={'trunk': 't', 'step': 10}, overrides={'steps': 15})], 'not at 10'),
    ([nano('b', fork={'trunk': 't', 'step': 10}, overrides={'steps': 15})], "trunk 't'"),
    ([nano('a', overrides={'warmup_steps': 50, 'steps': 10})], 'warmup_steps'),
])
def test_bad_sweep_is_one_line_before_any_run(tmp_path, runs, words):
  with pytest.raises(ConfigError) as e:
    runspec.load(write_sweep(tmp_path, runs))
  assert words in str(e.value) and '\n' not in str(e.value)


def test_cli_error_is_one_line_and_nonzero(tmp_path):
  path = write_sweep(tmp_path, [nano('a', budget=1e5)])
  out = subprocess.run([sys.executable, '-m', 'experiments.sweep', f'--sweep={path}',
                        f'--outdir={tmp_path / "out"}'], cwd=ROOT, capture_output=True, text=True)
  assert out.returncode != 0 and not (tmp_path / 'out').exists()
  lines = out.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith('error: run a: budget'), out.stderr


def test_submitit_missing_is_one_line(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, 'submitit', None)  # import submitit now raises ImportError
  path = write_sweep(tmp_path, [nano('a', budget=1e10)])
  with pytest.raises(ConfigError, match='submitit is not installed'):
    sweep.main([f'--sweep={path}', f'--outdir={tmp_path / "out"}', '--backend=submitit'])
  assert not (tmp_path / 'out').exists()


def test_outdir_of_another_sweep_or_redefined_run_is_refused(tmp_path):
  outdir = str(tmp_path / 'out')
  first = runspec.load(write_sweep(tmp_path, [nano('a', budget=1e10)], name='first'))
  os.makedirs(outdir)
  sweep.write_index(first, outdir, {'a': 'completed'})
  other = runspec.load(write_sweep(tmp_path, [nano('a', budget=1e10)], name='other'))
  with pytest.raises(ConfigError, match="holds sweep 'first'"):
    sweep.check_outdir(other, outdir)
  changed = runspec.load(write_sweep(tmp_path, [nano('a', budget=2e10)], name='first'))
  with pytest.raises(ConfigError, match='run a in .* was launched with other settings'):
    sweep.check_outdir(changed, outdir)
  grown = runspec.load(write_sweep(tmp_path, [nano('a', budget=1e10), nano('b', budget=1e10)],
                                   name='first'))
  sweep.check_outdir(grown, outdir)  # adding runs to a study is fine


def test_slots_split_cores_gpus_and_fake_devices():
  cpu = local.slots(2, [0, 1, 2, 3, 4], [], '--xla_force_host_platform_device_count=8 --foo')
  assert [s.cpus for s in cpu] == [(0, 1), (2, 3)]
  assert cpu[0].env == {'XLA_FLAGS': '--xla_force_host_platform_device_count=4 --foo'}
  gpu = local.slots(2, [0, 1], ['0', '1', '2', '3'], '')
  assert [s.env['CUDA_VISIBLE_DEVICES'] for s in gpu] == ['0,1', '2,3']
  assert local.slots(1, [0, 1], [], '')[0].env == {}
  with pytest.raises(ConfigError, match='--max-parallel=3 is more than the 2 cores'):
    local.slots(3, [0, 1], [], '')
  with pytest.raises(ConfigError, match='--max-parallel=0 must be at least 1'):
    local.slots(0, [0, 1], [], '')
  with pytest.raises(ConfigError, match='more than the 1 GPUs'):
    local.slots(2, [0, 1], ['0'], '')


def read(path):
  with open(path) as f:
    return json.load(f) if path.endswith('.json') else [json.loads(line) for line in f]


def launch(sweep_path, outdir):
  return subprocess.Popen([sys.executable, '-m', 'experiments.sweep', f'--sweep={sweep_path}',
                           f'--outdir={outdir}'], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)


def wait_for(condition, proc, timeout=120):
  deadline = time.time() + timeout
  while not condition():
    assert proc.poll() is None and time.time() < deadline, proc.stdout.read()
    time.sleep(0.1)


def test_killed_sweep_finishes_on_relaunch_without_redoing_runs(tmp_path):
  path = write_sweep(tmp_path, wsd(30, 3, (20,)) + [nano('other', overrides={'steps': 20})])
  outdir = str(tmp_path / 'out')
  proc = launch(path, outdir)
  trunk_run = os.path.join(outdir, 'trunk', 'run.json')
  wait_for(lambda: os.path.exists(os.path.join(outdir, 'logs', 'cool20.log')), proc)
  proc.send_signal(signal.SIGKILL)  # no chance to stop its runs: they get SIGTERM as orphans
  proc.wait()
  assert read(trunk_run)['status'] == 'completed'  # the branch waited for its trunk
  trunk_before = read(trunk_run)

  out, _ = launch(path, outdir).communicate(timeout=180)
  assert 'all 3 runs completed' in out, out
  assert read(trunk_run) == trunk_before  # not started again
  index = read(os.path.join(outdir, 'sweep.json'))
  assert {r['name']: r['status'] for r in index['runs']} == dict.fromkeys(
      ['trunk', 'cool20', 'other'], 'completed')
  forked = read(os.path.join(outdir, 'cool20', 'run.json'))
  assert forked['forked_from'] == {'workdir': os.path.join(outdir, 'trunk'), 'step': 20}
  assert forked['final']['tokens'] == 25 * 512  # counted from step 0, the trunk's 20 steps included
  first = read(os.path.join(outdir, 'cool20', 'metrics.jsonl'))[0]
  assert first['step'] == 20 and first['tokens'] == 20 * 512

  again = subprocess.run([sys.executable, '-m', 'experiments.sweep', f'--sweep={path}',
                          f'--outdir={outdir}'], cwd=ROOT, capture_output=True, text=True)
  assert '3 of 3 runs already completed; running 0' in again.stdout and again.returncode == 0


@pytest.mark.parametrize('x,text', [(41120, '41.1K'), (2.56e6, '2.56M'), (3.0e9, '3B'),
                                    (1.5e13, '15T'), (512, '512')])
def test_human_numbers(x, text):
  assert sweep.human(x) == text
