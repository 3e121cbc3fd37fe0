import jax
import numpy as np
import pytest

from configs import lm
from scaling import sharding, steps
from scaling.tasks import TASKS


def run(n_steps: int, **overrides):
  c = lm.get_config('size=nano')
  c.seq_len = 32
  c.update(dict(batch_size=8, steps=n_steps, warmup_steps=1, **overrides))
  mesh = sharding.make_mesh(c.mesh)
  task = TASKS['lm']
  fns, data = steps.build(c, task, mesh), task.make_data(c, 0, 1)
  state, losses = fns.init(), []
  for step in range(n_steps):
    state, metrics = fns.train_step(state, sharding.global_batch(data.train_batch(step), mesh), step)
    losses.append(float(metrics['train_loss']))
  return losses, jax.device_get(state['params'])


def test_gradient_accumulation_matches_the_full_batch():
  losses1, params1 = run(3)
  losses4, params4 = run(3, grad_accum=4)
  np.testing.assert_allclose(losses4, losses1, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), params4, params1)


def test_bfloat16_compute_trains_close_to_float32():
  losses32, _ = run(5)
  losses16, params16 = run(5, dtype='bfloat16')
  assert all(np.isfinite(losses16))
  np.testing.assert_allclose(losses16, losses32, rtol=2e-2)
  assert all(p.dtype == np.float32 for p in jax.tree.leaves(params16))
