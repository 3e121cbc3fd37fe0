"""The batched log-space Huber objective against plain formulas and finite differences."""

import numpy as np
import pytest

from analysis import laws
from analysis import objective

RNG = np.random.default_rng(0)
N_P = np.geomspace(5e7, 1e10, 12).repeat(3)
D_P = N_P * np.tile([5.0, 20.0, 80.0], 12)
LOSS_P = 1.8 + 400 / N_P**0.34 + 1800 / D_P**0.31 + 0.02 * RNG.standard_normal(36)


def _problem(weight_WxP=None, **kw):
  w = np.ones((1, 36)) if weight_WxP is None else weight_WxP
  return objective.Problem(objective.PowerSum(np.log(np.stack([N_P, D_P]))), np.log(LOSS_P)[None],
                           w, **kw)


def _plain(row, weight_P, delta=objective.DELTA):
  """The objective written out directly: E + A/N^α + B/D^β, no logsumexp."""
  a, b, e, alpha, beta = row
  r = np.log(np.exp(a) / N_P**alpha + np.exp(b) / D_P**beta + np.exp(e)) - np.log(LOSS_P)
  h = np.where(np.abs(r) <= delta, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))
  return (weight_P * h).sum()


def _rows(n):
  return np.array([6.0, 7.5, 0.6, 0.34, 0.31]) + RNG.normal(0, 0.3, (n, 5))


def test_huber_hand_values():
  np.testing.assert_allclose(objective.huber(np.array([5e-4, 2e-3, -2e-3, 0.0])),
                             [0.5 * 25e-8, 1e-3 * 1.5e-3, 1e-3 * 1.5e-3, 0.0], rtol=1e-12)


def test_matches_plain_formula_for_shared_and_per_row_weights():
  x = _rows(150)  # more rows than one chunk
  w_RxP = RNG.multinomial(36, np.full(36, 1 / 36), size=150).astype(float)
  f, _ = _problem()(x, np.arange(150))
  fw, _ = _problem(w_RxP)(x, np.arange(150))
  np.testing.assert_allclose(f, [_plain(r, 1.0) for r in x], rtol=1e-10)
  np.testing.assert_allclose(fw, [_plain(r, w) for r, w in zip(x, w_RxP)], rtol=1e-10)


def test_mean_is_sum_over_weight_total():
  x = _rows(4)
  f_sum, g_sum = _problem()(x, np.arange(4))
  f_mean, g_mean = _problem(mean=True)(x, np.arange(4))
  np.testing.assert_allclose(f_mean, f_sum / 36, rtol=1e-12)
  np.testing.assert_allclose(g_mean, g_sum / 36, rtol=1e-12)


@pytest.mark.parametrize('delta', [objective.DELTA, 10.0])  # linear regime; pure quadratic
def test_gradient_matches_central_differences(delta):
  x = _rows(6)
  prob = _problem(delta=delta)
  _, g = prob(x, np.arange(6))
  eps = 1e-6
  for q in range(5):
    step = np.zeros(5)
    step[q] = eps
    fp, _ = prob(x + step, np.arange(6))
    fm, _ = prob(x - step, np.arange(6))
    np.testing.assert_allclose(g[:, q], (fp - fm) / (2 * eps), rtol=1e-5, atol=1e-9)


def test_counts_as_weights_equal_repeated_points():
  counts = RNG.integers(0, 3, 36)
  idx = np.repeat(np.arange(36), counts)
  repeated = objective.Problem(objective.PowerSum(np.log(np.stack([N_P[idx], D_P[idx]]))),
                               np.log(LOSS_P[idx])[None], np.ones((1, len(idx))))
  x = _rows(3)
  np.testing.assert_allclose(_problem(counts[None].astype(float))(x, np.arange(3))[0],
                             repeated(x, np.arange(3))[0], rtol=1e-12)


def test_extreme_rows_stay_finite():
  # exp(800) overflows; the per-row shift keeps log L̂ = 800 exact
  x = np.array([[800.0, 0.0, 0.0, 0.0, 0.0]])
  f, g = _problem()(x, np.arange(1))
  r = 800 - np.log(LOSS_P)
  np.testing.assert_allclose(f, objective.DELTA * (r - 0.5 * objective.DELTA).sum(), rtol=1e-12)
  assert np.isfinite(g).all()


def test_one_variable_law_is_saturating_power():
  E, x0, alpha = 1.5, 3e8, 0.07
  C = np.geomspace(1e17, 1e22, 20)
  loss = E + (x0 / C)**alpha
  prob = objective.Problem(objective.PowerSum(np.log(C)[None]), np.log(loss)[None] + 0.01,
                           np.ones((1, 20)))
  f, _ = prob(np.array([[alpha * np.log(x0), np.log(E), alpha]]), np.arange(1))
  np.testing.assert_allclose(f, 20 * objective.DELTA * (0.01 - 0.5 * objective.DELTA), rtol=1e-9)


def test_numeric_residuals_match_the_analytic_power_sum():
  """Central differences of any log-prediction give the analytic objective and gradient."""
  def log_predict(x_nxQ):
    p = {k: v[:, None] for k, v in laws.CHINCHILLA.named(x_nxQ).items()}
    return np.log(laws.chinchilla(N_P[None], D_P[None], **p))

  x = _rows(70)
  w_RxP = RNG.multinomial(36, np.full(36, 1 / 36), size=70).astype(float)
  for w in (np.ones((1, 36)), w_RxP):
    analytic = _problem(w)(x, np.arange(70))
    numeric = objective.Problem(objective.Numeric(log_predict), np.log(LOSS_P)[None], w)(
        x, np.arange(70))
    np.testing.assert_allclose(numeric[0], analytic[0], rtol=1e-12)
    np.testing.assert_allclose(numeric[1], analytic[1], rtol=1e-6, atol=1e-9)
