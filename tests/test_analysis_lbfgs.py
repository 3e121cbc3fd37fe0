"""The batched L-BFGS against known minima and scipy's L-BFGS-B."""

import numpy as np
import scipy.optimize

from analysis import lbfgs


def rosenbrock(x_nxK, rows_n):
  del rows_n
  x, y = x_nxK[:, 0], x_nxK[:, 1]
  f = (1 - x)**2 + 100 * (y - x**2)**2
  g = np.stack([-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)], 1)
  return f, g


def scaled_quadratic(scale):
  H = np.diag([1.0, 10.0, 100.0])
  x_star = np.array([1.0, -2.0, 3.0])

  def fun(x_nxK, rows_n):
    del rows_n
    d = x_nxK - x_star
    return scale * np.einsum('ni,ij,nj->n', d, H, d), 2 * scale * d @ H
  return fun, x_star


def test_rosenbrock_from_many_starts():
  starts = np.random.default_rng(0).uniform(-2, 2, (50, 2))
  res = lbfgs.minimize(rosenbrock, starts, ftol=0, gtol=1e-9)
  assert res.converged.all()
  np.testing.assert_allclose(res.x, 1.0, atol=1e-6)


def test_rows_are_independent_of_the_batch():
  starts = np.random.default_rng(1).uniform(-2, 2, (8, 2))
  together = lbfgs.minimize(rosenbrock, starts)
  for i, s in enumerate(starts):
    alone = lbfgs.minimize(rosenbrock, s[None])
    np.testing.assert_array_equal(alone.x[0], together.x[i])
    assert alone.nit[0] == together.nit[i]


def test_same_minimum_as_scipy_lbfgsb():
  starts = np.random.default_rng(2).uniform(-2, 2, (10, 2))
  ours = lbfgs.minimize(rosenbrock, starts)

  def one(x):
    f, g = rosenbrock(x[None], None)
    return f[0], g[0]
  for s, x in zip(starts, ours.x):
    ref = scipy.optimize.minimize(one, s, jac=True, method='L-BFGS-B')
    np.testing.assert_allclose(x, ref.x, atol=2e-3)


def test_default_rules_stop_early_on_a_tiny_objective_like_scipy():
  # the averaging bug in miniature: the same bowl scaled down stops far from its minimum
  start = np.zeros((1, 3))
  for scale, reaches in ((1.0, True), (1e-7, False)):
    fun, x_star = scaled_quadratic(scale)
    ours = lbfgs.minimize(fun, start)
    ref = scipy.optimize.minimize(lambda x: tuple(v[0] for v in fun(x[None], None)), start[0],
                                  jac=True, method='L-BFGS-B')
    assert (np.abs(ours.x[0] - x_star).max() < 1e-3) == reaches
    assert (np.abs(ref.x - x_star).max() < 1e-3) == reaches
  strict = lbfgs.minimize(scaled_quadratic(1e-7)[0], start, ftol=0, gtol=1e-12)
  np.testing.assert_allclose(strict.x[0], x_star, atol=1e-4)
