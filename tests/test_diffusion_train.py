"""The diffusion task in the one training loop: acceptance run, sharding, samples, bad input."""

import json
import os
import subprocess
import sys
import time

import matplotlib.image as mpimg
import numpy as np
import pytest
from sklearn import datasets

from scaling.tasks import diffusion as task
from test_train import ROOT, rows, run_json, run_train

TINY = '--config=configs/dit.py:size=tiny'


@pytest.fixture(scope='module')
def tiny_dit(tmp_path_factory):
  """The acceptance command, exactly. Its run time is measured by the command itself (README),
  not asserted here: a test's wall clock measures the machine's load, not the code."""
  workdir = str(tmp_path_factory.mktemp('dit'))
  start = time.time()
  run_train(workdir, TINY)
  return workdir, time.time() - start


def test_tiny_dit_trains_on_digits_and_its_elbo_falls(tiny_dit):
  workdir, wall_s = tiny_dit
  evals = [r for r in rows(workdir) if 'eval_loss' in r]
  assert [r['step'] for r in evals] == [0, 100, 200, 300, 400]
  elbo = [r['eval_elbo_bpd'] for r in evals]
  assert all(b < a for a, b in zip(elbo, elbo[1:])), elbo
  assert elbo[-1] < np.log2(17), elbo  # better than a uniform guess over the 17 grey levels
  assert all(len(r['eval_mse']) == 16 for r in evals)
  # Each ELBO carries its standard error over the 256 eval examples; the fall from step 0 to the
  # end is many of them.
  assert all(0 < r['eval_elbo_bpd_stderr'] < 0.1 * r['eval_elbo_bpd'] for r in evals)
  assert all(r['eval_loss_stderr'] > 0 for r in evals)
  assert elbo[0] - elbo[-1] > 10 * evals[-1]['eval_elbo_bpd_stderr']
  print(f'\nacceptance run: {wall_s:.1f} s; eval ELBO bits/dim (17 grey levels) by step: '
        + ', '.join(f'{r["step"]}: {r["eval_elbo_bpd"]:.3f} ± {r["eval_elbo_bpd_stderr"]:.3f}'
                    for r in evals))


def test_run_json_describes_the_dit(tiny_dit):
  run = run_json(tiny_dit[0])
  assert run['status'] == 'completed' and run['task'] == 'diffusion'
  assert run['model']['patch'] == 2 and run['tokens_per_step'] == 64 * 16
  assert 90_000 < run['n_params'] < 110_000
  assert run['dataset']['name'] == 'digits' and len(run['dataset']['fingerprint']) == 64
  with open(os.path.join(tiny_dit[0], 'config.json')) as f:
    d = json.load(f)['diffusion']
  logsnr_G = np.array(run['eval_logsnr_grid'])  # one jittered node in each sixteenth of the range
  stratum_G = np.floor((d['logsnr_max'] - logsnr_G) / (d['logsnr_max'] - d['logsnr_min']) * 16)
  np.testing.assert_array_equal(stratum_G, np.arange(16))
  final = run['final']
  assert final['eval_elbo_bpd'] == rows(tiny_dit[0])[-1]['eval_elbo_bpd']
  assert final['eval_elbo_bpd_stderr'] > 0 and final['eval_loss_stderr'] > 0


def intensities(png: str) -> np.ndarray:
  return mpimg.imread(png)[..., 0]


def test_samples_have_the_pixel_statistics_of_the_data(tiny_dit):
  samples = intensities(os.path.join(tiny_dit[0], 'samples.png'))
  assert samples.shape == (64, 64)  # 8 x 8 tiles of 8 x 8 images
  data = datasets.load_digits().images / 16
  np.testing.assert_allclose([samples.mean(), samples.std()], [data.mean(), data.std()], rtol=0.2)


def test_grid_tiles_images_row_by_row(tmp_path):
  levels_N = np.array([-1.0, 0.0, 1.0])  # three 2x2 images: black, grey, white
  images_Nx2x2x1 = np.broadcast_to(levels_N[:, None, None, None], (3, 2, 2, 1))
  task.write_grid(str(tmp_path / 'g.png'), images_Nx2x2x1)
  np.testing.assert_allclose(intensities(str(tmp_path / 'g.png'))[::2, ::2], [[0, 0.5], [1, 0]],
                             atol=0.01)  # two to a row; the fourth tile is empty


def test_sample_cli_writes_a_grid_from_the_latest_checkpoint(tiny_dit, tmp_path):
  out = str(tmp_path / 'grid.png')
  proc = subprocess.run([sys.executable, '-m', 'scaling.sample', f'--workdir={tiny_dit[0]}',
                         f'--out={out}', '--seed=1'], cwd=ROOT, capture_output=True, text=True)
  assert proc.returncode == 0, proc.stderr
  assert 'from step 400' in proc.stdout
  assert intensities(out).shape == (64, 64)


def test_eight_fake_devices_give_the_losses_of_one():
  proc = subprocess.run([sys.executable, 'tests/sharded_steps.py', 'dit', 'size=tiny'], cwd=ROOT,
                        capture_output=True, text=True, check=True)
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  np.testing.assert_allclose(out['losses8'], out['losses1'], rtol=1e-4)
  qkv = [shapes for path, shapes in out['params'].items() if 'w_qkv' in path][0]
  assert qkv[0] == [24, 3, 2, 12]  # (48, 3, 4, 12) split over fsdp and tensor


@pytest.mark.parametrize('args,field', [
    ([TINY, '--config.model.patch=3'], 'model.patch'),
    ([TINY, '--config.diffusion.schedule=sigmoid'], 'diffusion.schedule'),
    ([TINY, '--config.diffusion.target=score'], 'diffusion.target'),
    ([TINY, '--config.dataset=stdlib'], 'dataset'),
    (['--config=configs/lm.py:size=nano', '--config.dataset=digits'], 'dataset'),
])
def test_bad_input_is_one_line_and_a_nonzero_exit(tmp_path, args, field):
  out = run_train(str(tmp_path / 'run'), *args, check=False)
  lines = out.stderr.strip().splitlines()
  assert out.returncode != 0
  assert len(lines) == 1 and lines[0].startswith(f'error: {field}'), out.stderr
