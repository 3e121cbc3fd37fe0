"""benchmarks/gpu.sh and the JSON line of benchmarks/train_throughput.py.

gpu.sh's dry run (CPU, tiny shapes) runs `python -m benchmarks.train_throughput --json --steps=2
--warmup=1` on configs/lm.py:size=nano at seq 32 (a probe, then the batch the probe sizes) and on
the tiny DiT; its two JSON lines are the ones checked here, so the script and the benchmark are
exercised by one set of processes (each costs seconds of JAX import on a 2-core machine).
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from configs import dit, lm
from scaling.tasks import TASKS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GPU_SH = os.path.join(ROOT, 'benchmarks', 'gpu.sh')


def gpu_sh(env: dict, tmp_path) -> subprocess.CompletedProcess:
  env = {**os.environ, 'GPU_SH_PYTHON': sys.executable,
         'GPU_SH_RESULTS': str(tmp_path / 'results'), **env}
  return subprocess.run(['bash', GPU_SH], capture_output=True, text=True, env=env, cwd=tmp_path)


@pytest.fixture(scope='module')
def dry_run(tmp_path_factory):
  tmp = tmp_path_factory.mktemp('gpu_sh')
  # The 290 s budget is the GPU's; a loaded 2-core machine with a cold XLA cache needs longer.
  proc = gpu_sh({'GPU_SH_DRY_RUN': '1', 'GPU_SH_MEMORY_MIB': '65536', 'GPU_SH_BUDGET_S': '1200'}, tmp)
  assert proc.returncode == 0, proc.stderr
  files = list((tmp / 'results').iterdir())
  assert len(files) == 1 and files[0].suffix == '.jsonl', files
  lines = files[0].read_text().splitlines()
  assert len(lines) == 2, lines
  return proc.stdout, [json.loads(line) for line in lines]


def test_dry_run_sizes_the_lm_batch_from_a_probe(dry_run):
  stdout, (lm_line, dit_line) = dry_run
  # The probe runs at batch 2; a pretended 64 GiB holds far more, so the cap of 8 applies.
  assert 'the probe at batch 2 peaked at' in stdout
  assert (lm_line['task'], lm_line['batch_size'], lm_line['dtype']) == ('lm', 8, 'bfloat16')
  assert (dit_line['task'], dit_line['batch_size']) == ('diffusion', 16)
  assert dit_line['model']['channels'] == 4 and dit_line['model']['num_classes'] == 1000


def test_lm_json_fields_are_consistent(dry_run):
  r = dry_run[1][0]
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
  c = lm.get_config('size=nano')
  c.seq_len, c.batch_size = 32, 8
  assert TASKS['lm'].describe(c)['flops_per_token'] == per_token
  for convention, flops in per_token.items():
    assert r['model_flops_per_s'][convention] == pytest.approx(r['tokens_per_s'] * flops, rel=1e-12)
  assert r['mfu'] == pytest.approx(r['model_flops_per_s']['chinchilla'] / r['peak_flops'], rel=1e-12)
  assert 0 < r['mfu'] < 1 and r['compile_s'] > 0 and r['peak_memory_kind'] == 'host_rss'
  # The fields the peer harness tabulates: XLA's count of the step, and nanoGPT's 6N + 12·L·D·seq.
  assert r['flops_per_s'] == pytest.approx(r['xla_flops_per_step'] / r['step_s_median'], rel=1e-12)
  assert r['flops_6n_per_step'] == (6 * 41120 + 12 * 2 * 32 * 32) * 8 * 32
  assert 0 < r['cpu_util'] <= os.cpu_count() + 0.5
  assert r['step_s_min'] <= r['step_s_median'] and r['peak_memory_bytes'] > 0


def test_dit_json_fields_are_consistent(dry_run):
  r = dry_run[1][1]
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
  assert not (tmp_path / 'results').exists()
