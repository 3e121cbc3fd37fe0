"""The gradient noise scale B_simple = tr(Σ)/|G|² (McCandlish et al. 2018, App. A) that the train
step logs under `log_grad_noise_scale`: its estimator, checked against an independent formula and
against a linear regression whose per-example gradient covariance is known in closed form; the
step that logs it; and the config that cannot give it two batch sizes.
"""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import test_steps
from configs import lm
from scaling import metrics, sharding, steps
from scaling.errors import ConfigError
from scaling.tasks import TASKS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Linear regression y = x·w* + ε with x ~ N(0, I_d), ε ~ N(0, σ²), loss ½(x·w − y)², at w = w* + r.
# A per-example gradient is g = x (x·r − ε), so G = E[g] = r, and by Isserlis' theorem
# E[g gᵀ] = (|r|² + σ²) I + 2 r rᵀ: Σ = (|r|² + σ²) I + r rᵀ, tr(Σ) = d (|r|² + σ²) + |r|².
DIM, NOISE_SD = 8, 1.0
RESIDUAL = jnp.full((DIM,), 1 / np.sqrt(DIM))  # |r|² = 1
TRUE_TRACE = DIM * (1 + NOISE_SD**2) + 1.0  # 17
TRUE_SQ_NORM = 1.0
W_STAR = jnp.linspace(-1.0, 1.0, DIM)


def linear_regression_batch(key: jax.Array, batch_size: int) -> dict:
  kx, ke = jax.random.split(key)
  x_BxD = jax.random.normal(kx, (batch_size, DIM))
  return {'x': x_BxD, 'y': x_BxD @ W_STAR + NOISE_SD * jax.random.normal(ke, (batch_size,))}


def linear_regression_grad_fn(w_D, batch: dict, rng):
  del rng
  loss = lambda w: (0.5 * (batch['x'] @ w - batch['y'])**2).mean()
  return (loss(w_D), {}), jax.grad(loss)(w_D)


def test_parts_are_the_sample_variance_of_the_group_gradients():
  """With B_big = n B_small, tr(Σ) is B_small times the unbiased sample variance of the n group
  gradients, and |G|² is |mean|² less the variance of the mean: a second formula, in float64."""
  rng = np.random.default_rng(0)
  n, b_small = 5, 12
  g_NxD = rng.normal(size=(n, 30)) + 0.3
  mean_D = g_NxD.mean(axis=0)
  parts = steps.noise_scale_parts(np.mean(np.sum(g_NxD**2, axis=1)), mean_D @ mean_D, b_small,
                                  n * b_small)
  sample_var = np.sum((g_NxD - mean_D)**2) / (n - 1)
  np.testing.assert_allclose(parts['grad_cov_trace'], b_small * sample_var, rtol=1e-12)
  np.testing.assert_allclose(parts['grad_true_sq_norm'], mean_D @ mean_D - sample_var / n,
                             rtol=1e-12)


def ratio_and_stderr(trace_T: np.ndarray, sq_norm_T: np.ndarray) -> tuple[float, float]:
  """mean(trace)/mean(sq_norm) over T independent steps, and its delta-method standard error."""
  t, g = trace_T.mean(), sq_norm_T.mean()
  ratio = t / g
  cov = np.cov(trace_T, sq_norm_T) / len(trace_T)
  var = (cov[0, 0] - 2 * ratio * cov[0, 1] + ratio**2 * cov[1, 1]) / g**2
  return ratio, float(np.sqrt(var))


def test_microbatches_estimate_the_analytic_noise_scale_of_linear_regression():
  n_steps, batch_size, microbatches = 4000, 64, 4

  def one_step(key):
    batch = linear_regression_batch(key, batch_size)
    _, _, grads, small_sq = steps.accumulate(linear_regression_grad_fn, W_STAR + RESIDUAL, batch,
                                             key, microbatches, noise=True)
    return steps.noise_scale_parts(small_sq, grads @ grads, batch_size / microbatches, batch_size)

  parts = jax.jit(jax.vmap(one_step))(jax.random.split(jax.random.key(0), n_steps))
  trace_T = np.asarray(parts['grad_cov_trace'], np.float64)
  sq_norm_T = np.asarray(parts['grad_true_sq_norm'], np.float64)
  ratio, se = ratio_and_stderr(trace_T, sq_norm_T)
  truth = TRUE_TRACE / TRUE_SQ_NORM
  assert se < 0.05 * truth, se  # precise enough that a wrong batch-size factor fails
  assert abs(ratio - truth) < 3 * se, (ratio, se, truth)
  for estimate_T, true in ((trace_T, TRUE_TRACE), (sq_norm_T, TRUE_SQ_NORM)):
    assert abs(estimate_T.mean() - true) < 3 * estimate_T.std(ddof=1) / np.sqrt(n_steps)


def test_the_step_logs_the_parts_and_trains_as_without_them():
  losses_on, params_on = test_steps.run(3, grad_accum=2, log_grad_noise_scale=True)
  losses_off, params_off = test_steps.run(3, grad_accum=2)
  np.testing.assert_allclose(losses_on, losses_off, rtol=1e-6)  # the same sums, fused otherwise
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), params_on,
               params_off)

  c = lm.get_config('size=nano')
  c.update(dict(seq_len=32, batch_size=8, grad_accum=2, log_grad_noise_scale=True))
  mesh = sharding.make_mesh(c.mesh)
  fns, data = steps.build(c, TASKS['lm'], mesh), TASKS['lm'].make_data(c, 0, 1)
  _, out = fns.train_step(fns.init(), sharding.global_batch(data.train_batch(0), mesh), 0)
  assert np.isfinite(float(out['grad_cov_trace'])) and float(out['grad_cov_trace']) > 0


def test_the_row_takes_the_ratio_of_the_window_means():
  assert metrics.noise_scale(34.0, 2.0) == 17.0
  assert metrics.noise_scale(34.0, -0.1) is None
  c = lm.get_config('size=nano')
  c.peak_flops, c.log_every = 1e12, 2
  mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ('data',))
  described = {'tokens_per_step': 10, 'flops_per_token': {'kaplan': 1.0, 'chinchilla': 1.0}}
  accounting = metrics.Accounting(c, described, mesh)
  window = [{'train_loss': np.float32(1.0), 'grad_cov_trace': np.float32(t),
             'grad_true_sq_norm': np.float32(g)} for t, g in ((10.0, 3.0), (30.0, -1.0))]
  accounting.add(1, window[0])
  accounting.add(2, window[1])
  (row,) = accounting.flush()
  assert row['grad_noise_scale'] == pytest.approx(20.0 / 1.0)  # not mean(10/3, 30/-1)


def test_one_batch_size_is_refused_naming_the_field():
  c = lm.get_config('size=nano')
  c.log_grad_noise_scale = True
  with pytest.raises(ConfigError, match='^log_grad_noise_scale: '):
    steps.noise_scale_groups(c, 1)
  assert steps.noise_scale_groups(c, 4) == 4
  c.grad_accum = 2
  assert steps.noise_scale_groups(c, 4) == 2


def test_train_refuses_it_in_one_line_writing_nothing(tmp_path):
  workdir = tmp_path / 'run'
  out = subprocess.run([sys.executable, '-m', 'scaling.train', '--config=configs/lm.py:size=nano',
                        '--config.log_grad_noise_scale=true', f'--workdir={workdir}'],
                       capture_output=True, text=True, cwd=ROOT)
  lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
  assert out.returncode != 0 and len(lines) == 1, lines
  assert lines[0].startswith('error: log_grad_noise_scale: '), lines
  assert not workdir.exists()


SHARDED = r'''
import json, os, sys
os.environ['XLA_FLAGS'] = '--xla_force_host_platform_device_count=4'
sys.path.insert(0, 'tests')
import jax, numpy as np
from jax.sharding import AxisType
from configs import lm
from scaling import sharding, steps
from scaling.tasks import TASKS
import test_noise_scale as t
steps.enable_compilation_cache()

mesh = jax.make_mesh((1, 4, 1), sharding.AXES, axis_types=(AxisType.Auto,) * 3)
batch = jax.device_put(t.linear_regression_batch(jax.random.key(1), 32),
                       sharding.batch_sharding(mesh))
w = t.W_STAR + t.RESIDUAL
shards = lambda w, b: steps.shard_gradients(t.linear_regression_grad_fn, w, b, jax.random.key(0),
                                            mesh)
_, _, grads, small_sq = jax.jit(shards)(w, batch)
x, y = np.asarray(batch['x'], np.float64), np.asarray(batch['y'], np.float64)
blocks = [x[i * 8:(i + 1) * 8].T @ (x[i * 8:(i + 1) * 8] @ np.asarray(w) - y[i * 8:(i + 1) * 8]) / 8
          for i in range(4)]


def lm_losses(**overrides):
  c = lm.get_config('size=nano')
  c.update(dict(seq_len=32, batch_size=8, steps=3, warmup_steps=1, **overrides))
  fns, data = steps.build(c, TASKS['lm'], mesh), TASKS['lm'].make_data(c, 0, 1)
  state, out = fns.init(), []
  for step in range(3):
    state, m = fns.train_step(state, sharding.global_batch(data.train_batch(step), mesh), step)
    out.append([float(m['train_loss']), float(m.get('grad_cov_trace', 0.0))])
  return out


print(json.dumps({'small_sq': float(small_sq),
                  'expected_small_sq': float(np.mean([g @ g for g in blocks])),
                  'grads': np.asarray(grads).tolist(),
                  'expected_grads': np.mean(blocks, axis=0).tolist(),
                  'lm_on': lm_losses(log_grad_noise_scale=True), 'lm_off': lm_losses()}))
'''


def test_data_shards_give_the_small_batch_without_accumulation():
  """On 4 fake CPU devices: each shard's gradient is the one of the rows that shard holds, and the
  LM trains on that route as it does without it."""
  out = subprocess.run([sys.executable, '-c', SHARDED], capture_output=True, text=True, cwd=ROOT)
  assert out.returncode == 0, out.stderr
  r = json.loads(out.stdout.splitlines()[-1])
  np.testing.assert_allclose(r['small_sq'], r['expected_small_sq'], rtol=1e-5)
  np.testing.assert_allclose(r['grads'], r['expected_grads'], rtol=1e-5, atol=1e-6)
  on, off = np.array(r['lm_on']), np.array(r['lm_off'])  # the LM's step on the shard route
  np.testing.assert_allclose(on[:, 0], off[:, 0], rtol=1e-5)
  assert np.all(on[:, 1] > 0)
