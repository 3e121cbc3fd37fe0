"""benchmarks/gpu.sh, and the JSON lines of its stages (benchmarks/gpu_preflight.py and
benchmarks/train_throughput.py).

gpu.sh's dry run (CPU, benchmarks/gpu_shapes.py's tiny shapes in bf16) runs the preflight, then
`python -m benchmarks.train_throughput --json --steps=2 --warmup=1` on configs/lm.py:size=nano at
seq 32 and on the tiny DiT; its three JSON lines are the ones checked here, so the script and the
benchmarks are exercised by one set of processes (each costs seconds of JAX import on 2 cores).
"""

import json
import math
import os
import shutil
import subprocess
import sys
import tarfile

import pytest

from benchmarks import gpu_preflight, gpu_shapes
from configs import dit
from scaling import dit_flops, flops
from scaling.tasks import TASKS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GPU_SH = os.path.join(ROOT, 'benchmarks', 'gpu.sh')


def gpu_sh(env: dict, tmp_path) -> subprocess.CompletedProcess:
  env = {**os.environ, 'GPU_SH_PYTHON': sys.executable, 'OUT': str(tmp_path / 'out'), **env}
  return subprocess.run(['bash', GPU_SH], capture_output=True, text=True, env=env, cwd=tmp_path)


@pytest.fixture(scope='module')
def dry_run(tmp_path_factory):
  tmp = tmp_path_factory.mktemp('gpu_sh')
  # The 300 s budget is the GPU's; a loaded 2-core machine with a cold XLA cache needs longer.
  proc = gpu_sh({'GPU_SH_DRY_RUN': '1', 'GPU_SH_BUDGET_S': '1200'}, tmp)
  assert proc.returncode == 0, proc.stderr
  out = tmp / 'out'
  assert {p.name for p in out.iterdir()} == {'gpu.jsonl', 'gpu.log', 'preflight.log', 'lm.log',
                                             'dit.log', 'lm-profile.tar.gz'}
  lines = (out / 'gpu.jsonl').read_text().splitlines()
  assert len(lines) == 3, lines
  return out, [json.loads(line) for line in lines]


def test_preflight_line(dry_run):
  preflight = dry_run[1][0]
  assert preflight['stage'] == 'preflight' and preflight['platform'] == 'cpu'
  assert all(preflight[p] for p in gpu_preflight.PACKAGES)
  # On a CPU the models' bf16 causal attention at L = 256 is the blocked kernel.
  assert preflight['attention_kernel'] == 'blocked'
  assert set(preflight['attention_errors']) == {'out', 'dq', 'dk', 'dv'}
  assert 0 < max(preflight['attention_errors'].values()) < gpu_preflight.ATTENTION_RTOL
  assert preflight['ln_vocab'] == pytest.approx(math.log(256))
  assert preflight['first_train_loss'] == pytest.approx(math.log(256), rel=gpu_preflight.LOSS_RTOL)
  assert preflight['matmul_ceiling_flops'] > 0


def test_the_timed_stages_take_the_preflights_ceiling_and_leave_a_trace(dry_run):
  out, (preflight, lm_line, dit_line) = dry_run
  assert (lm_line['task'], lm_line['batch_size'], lm_line['dtype']) == ('lm', 8, 'bfloat16')
  assert (dit_line['task'], dit_line['batch_size']) == ('diffusion', 16)
  assert dit_line['model']['channels'] == 4 and dit_line['model']['num_classes'] == 1000
  for r in (lm_line, dit_line):
    assert r['timed_steps'] == 2 and r['matmul_ceiling_flops'] == preflight['matmul_ceiling_flops']
    assert r['mfu_of_matmul_ceiling'] == pytest.approx(
        r['model_flops_per_s']['chinchilla'] / r['matmul_ceiling_flops'], rel=1e-12)
  with tarfile.open(out / 'lm-profile.tar.gz') as tar:
    names = tar.getnames()
  assert 'lm-profile/step.hlo.txt' in names and 'lm-profile/trace.json' in names
  assert any(n.endswith('.trace.json.gz') for n in names)
  assert not any(n.endswith('.xplane.pb') for n in names)


def test_gpu_shapes_are_the_issues_models():
  m = gpu_shapes.get_config('task=lm').model
  assert (m.n_layer, m.d_model, m.n_head, m.d_ff, m.vocab_size, m.seq_len) == (
      24, 1024, 16, 4096, 32768, 2048)
  d = gpu_shapes.get_config('task=dit')
  assert (d.model.d_model, d.model.n_layer, d.model.patch, d.model.image_size, d.batch_size) == (
      768, 12, 2, 32, 256)


def test_lm_json_fields_are_consistent(dry_run):
  r = dry_run[1][1]
  assert r['devices'] == '1 x cpu' and r['model']['seq_len'] == 32
  assert (r['remat'], r['scan_layers']) == ('none', False)
  # nano by hand: 2 layers of 4·32² + 2·32·128 + 2·32 weights, a final norm of 32, embed + unembed 2·256·32.
  assert r['params'] == 2 * (4 * 32**2 + 2 * 32 * 128 + 2 * 32) + 32 + 2 * 256 * 32 == 41120
  assert r['tokens_per_step'] == 8 * 32
  assert r['tokens_per_s'] == pytest.approx(r['tokens_per_step'] / r['step_s_median'], rel=1e-12)
  # Training FLOPs per token, 3 x forward, worked by hand for nano at seq 32 (scaling/flops.py):
  # kaplan 2·n_layer·(4D² + 2DF) + 2·n_layer·L·D; chinchilla adds the logits, softmax and embeddings.
  per_token = {'kaplan': 3 * (2 * 2 * (4 * 32**2 + 2 * 32 * 128) + 2 * 2 * 32 * 32),
               'chinchilla': 3 * (2 * 256 * 32 * 2 + 2 * (2 * 3 * 32**2 + 2 * 32 * 32 + 3 * 2 * 32
                                                       + 2 * 32 * 32 + 2 * 32**2 + 2 * 2 * 32 * 128))}
  # MaxText's: kaplan's and the logits' 2·D·V (the unembedding, not the embedding lookup).
  maxtext = per_token['kaplan'] + 3 * 2 * 32 * 256
  c = gpu_shapes.get_config('task=lm,dry_run=true')
  assert TASKS['lm'].describe(c)['flops_per_token'] == per_token
  assert flops.lm_maxtext_train_flops_per_token(c.model) == maxtext
  for convention, per in per_token.items() | {('maxtext', maxtext)}:
    assert r['model_flops_per_s'][convention] == pytest.approx(r['tokens_per_s'] * per, rel=1e-12)
  assert r['mfu'] == pytest.approx(r['model_flops_per_s']['chinchilla'] / r['peak_flops'], rel=1e-12)
  assert r['mfu_maxtext'] == pytest.approx(r['mfu'] * maxtext / per_token['chinchilla'], rel=1e-12)
  assert r['first_train_loss'] == pytest.approx(math.log(256), rel=gpu_preflight.LOSS_RTOL)
  assert 0 < r['mfu'] < 1 and r['compile_s'] > 0 and r['peak_memory_kind'] == 'host_rss'
  # The fields the peer harness tabulates: XLA's count of the step, and nanoGPT's 6N + 12·L·D·seq.
  assert r['flops_per_s'] == pytest.approx(r['xla_flops_per_step'] / r['step_s_median'], rel=1e-12)
  assert r['flops_6n_per_step'] == (6 * 41120 + 12 * 2 * 32 * 32) * 8 * 32
  assert 0 < r['cpu_util'] <= os.cpu_count() + 0.5
  assert r['step_s_min'] <= r['step_s_median'] and r['peak_memory_bytes'] > 0


def test_dit_json_fields_are_consistent(dry_run):
  r = dry_run[1][2]
  c = dit.get_config('size=tiny')
  c.model.image_size, c.model.channels, c.model.num_classes, c.batch_size = 8, 4, 1000, 16
  described = TASKS['diffusion'].describe(c)
  assert r['params'] == described['n_params']
  assert r['tokens_per_step'] == 16 * (8 // 2)**2 == described['tokens_per_step']
  assert r['images_per_s'] == pytest.approx(16 / r['step_s_median'], rel=1e-12)
  assert r['tokens_per_s'] == pytest.approx(r['tokens_per_step'] / r['step_s_median'], rel=1e-12)
  for convention, flops in described['flops_per_token'].items():
    assert r['model_flops_per_s'][convention] == pytest.approx(r['tokens_per_s'] * flops, rel=1e-12)
  assert r['mfu'] == pytest.approx(r['model_flops_per_s']['chinchilla'] / r['peak_flops'], rel=1e-12)
  # MaxText's count for the DiT is every matmul: Chinchilla's less the softmax's 3 per score.
  T = (8 // 2)**2
  softmax = 3 * 3 * c.model.n_layer * c.model.n_head * T**2 / T
  assert dit_flops.dit_maxtext_train_flops_per_token(c.model) == pytest.approx(
      described['flops_per_token']['chinchilla'] - softmax, rel=1e-12)
  assert r['mfu_maxtext'] == pytest.approx(
      r['tokens_per_s'] * (described['flops_per_token']['chinchilla'] - softmax) / r['peak_flops'],
      rel=1e-12)


def fake_failing_nvidia_smi(tmp_path) -> str:
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir()
  smi = bin_dir / 'nvidia-smi'
  smi.write_text('#!/bin/sh\necho "NVIDIA-SMI has failed because it could not communicate with '
                 'the NVIDIA driver."\nexit 9\n')
  smi.chmod(0o755)
  return f'{bin_dir}:{os.environ["PATH"]}'


@pytest.mark.parametrize('host', ['no nvidia-smi', 'nvidia-smi fails'])
def test_gpu_sh_without_a_gpu_fails_with_one_line(host, tmp_path):
  if host == 'no nvidia-smi':
    path = '/usr/bin:/bin'
    if shutil.which('nvidia-smi', path=path):
      pytest.skip('this host has nvidia-smi')
    expected = 'nvidia-smi not found'
  else:
    path, expected = fake_failing_nvidia_smi(tmp_path), 'nvidia-smi failed: NVIDIA-SMI has failed'
  proc = gpu_sh({'PATH': path}, tmp_path)
  assert proc.returncode != 0
  assert proc.stderr.splitlines() == [proc.stderr.strip()]
  assert proc.stderr.startswith(f'gpu.sh: error: {expected}')
  assert not (tmp_path / 'out' / 'gpu.jsonl').exists()


def test_a_stage_past_its_time_limit_fails_in_one_line(tmp_path):
  proc = gpu_sh({'GPU_SH_DRY_RUN': '1', 'GPU_SH_PREFLIGHT_S': '1'}, tmp_path)
  assert proc.returncode != 0
  assert proc.stderr.splitlines() == [proc.stderr.strip()]
  assert proc.stderr.startswith('gpu.sh: error: preflight: still running after 1s, its limit')
  assert not (tmp_path / 'out' / 'gpu.jsonl').exists()
