"""Standard errors of eval means: moments per stratum, their average over batches, eval rows."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import lm
from scaling import stderr
from scaling.metrics import Accounting


def test_moments_by_hand():
  # Strata 0: {1, 3} (mean 2, mean square 5); 1: {2, 6} (mean 4, mean square 20).
  values_B, stratum_B = jnp.array([1.0, 2.0, 3.0, 6.0]), jnp.array([0, 1, 0, 1])
  np.testing.assert_allclose(stderr.moments(values_B, stratum_B, 2), [[2, 4], [5, 20]])
  np.testing.assert_allclose(stderr.moments(values_B), [[3], [12.5]])


def test_one_stratum_is_the_textbook_standard_error():
  values_N = np.array([2.0, 4.0, 4.0, 5.0, 7.0, 8.0])  # squared deviations 24: variance 4.8 (ddof 1)
  moments = stderr.moments(jnp.asarray(values_N))
  assert stderr.from_moments(moments, 6) == pytest.approx(np.sqrt(4.8 / 6), rel=1e-6)


def test_stratified_error_matches_the_spread_of_repeated_evals():
  # Four strata whose means differ by far more than their spread, as log-SNR levels do. An eval
  # of 4 batches x 32 rows is repeated 4000 times: the predicted error must match the observed
  # spread of the means (to 5%, the Monte-Carlo noise being 1.1%), while the unstratified formula
  # is sqrt(132.5 / 7.5) = 4.2 times too large (total over within-stratum variance).
  S, batches, rows = 4, 4, 32
  keys = jax.random.split(jax.random.key(0), 4000)
  stratum_B = jnp.arange(rows) % S

  def one_eval(key):
    values_KxB = 10.0 * stratum_B + (1.0 + stratum_B) * jax.random.normal(key, (batches, rows))
    per_batch = jax.vmap(lambda v: stderr.moments(v, stratum_B, S))(values_KxB)
    return values_KxB.mean(), per_batch.mean(0), jax.vmap(stderr.moments)(values_KxB).mean(0)

  means, strat, plain = jax.jit(jax.vmap(one_eval))(keys)
  observed = np.std(np.asarray(means, np.float64), ddof=1)
  predicted = np.mean([stderr.from_moments(m, batches * rows) for m in np.asarray(strat)])
  unstratified = np.mean([stderr.from_moments(m, batches * rows) for m in np.asarray(plain)])
  np.testing.assert_allclose(predicted, observed, rtol=0.05)
  assert unstratified > 3.5 * observed


def test_a_single_row_per_stratum_has_no_error():
  assert stderr.from_moments([[1.0, 2.0], [1.0, 4.0]], 2) is None


def test_eval_rows_and_final_carry_the_standard_error():
  c = lm.get_config('size=tiny')
  c.unlock()
  c.peak_flops, c.batch_size, c.eval_batches = 1e12, 4, 2
  mesh = jax.sharding.Mesh(np.array(jax.devices()[:1]), ('data',))
  described = {'tokens_per_step': 10, 'flops_per_token': {'kaplan': 1.0, 'chinchilla': 1.0}}
  accounting = Accounting(c, described, mesh)
  values = {'eval_loss': np.float32(2.0), 'eval_loss_moments': np.array([[2.0], [4.5]])}
  row = accounting.eval_row(0, values)
  # Eight windows with variance 0.5 * 8/7: standard error sqrt(4/7 / 8).
  assert row['eval_loss_stderr'] == pytest.approx(np.sqrt(4 / 7 / 8))
  assert 'eval_loss_moments' not in row
  assert accounting.final == {'eval_loss': 2.0, 'eval_loss_stderr': row['eval_loss_stderr']}
