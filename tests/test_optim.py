import jax.numpy as jnp
import numpy as np
import pytest

from configs import common
from scaling import optim
from scaling.errors import ConfigError


def cfg(**overrides):
  c = common.training_config()
  c.update(dict(lr=1.0, steps=100, warmup_steps=10, min_lr_ratio=0.1, cooldown_fraction=0.2))
  c.update(overrides)
  return c


@pytest.mark.parametrize('step,expected', [(0, 0.1), (9, 1.0), (55, 0.55), (100, 0.1)])
def test_cosine(step, expected):
  # Warmup ends at step 9; cosine runs over steps 10..100 down to 0.1: halfway (55) gives 0.55.
  assert float(optim.schedule(cfg(schedule='cosine'))(step)) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize('step,expected', [(4, 0.5), (50, 1.0), (99, 1.0)])
def test_constant(step, expected):
  assert float(optim.schedule(cfg(schedule='constant'))(step)) == pytest.approx(expected)


@pytest.mark.parametrize('shape,at_90', [('linear', 0.55), ('sqrt', 0.1 + 0.9 * (1 - 0.5**0.5)),
                                         ('cosine', 0.55)])
def test_wsd_cools_down_over_the_last_fifth(shape, at_90):
  lr = optim.schedule(cfg(schedule='wsd', cooldown_shape=shape))
  assert float(lr(79)) == pytest.approx(1.0)
  assert float(lr(90)) == pytest.approx(at_90, abs=1e-6)
  assert float(lr(100)) == pytest.approx(0.1)


def test_weight_decay_skips_norm_scales():
  tx = optim.make(cfg(warmup_steps=0, schedule='constant', weight_decay=0.1))
  params = {'w': jnp.ones((2, 2)), 'scale': jnp.ones(2)}
  zeros = {'w': jnp.zeros((2, 2)), 'scale': jnp.zeros(2)}
  updates, _ = tx.update(zeros, tx.init(params), params)
  np.testing.assert_allclose(updates['w'], -0.1)  # lr 1 * decay 0.1 * weight 1
  np.testing.assert_allclose(updates['scale'], 0.0)


def test_bad_schedule_is_a_config_error():
  with pytest.raises(ConfigError, match='schedule'):
    optim.check_config(cfg(schedule='exponential'))
