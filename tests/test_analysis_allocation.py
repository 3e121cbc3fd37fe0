"""Laws and compute-optimal allocation: closed form, numeric search, and hand-worked cases."""

import numpy as np
import pytest

from analysis import allocation
from analysis import laws

FIT = dict(E=1.817, A=477.8, B=2143.0, alpha=0.3473, beta=0.3672)  # the replication's grid fit


def test_law_rows_round_trip_and_predict():
  power = laws.Law(('C',))
  p = dict(E=1.6, x0=2e8, alpha=0.05)
  got = power.named(power.row(p))
  assert got.keys() == p.keys()
  np.testing.assert_allclose([got[k] for k in p], list(p.values()), rtol=1e-12)
  np.testing.assert_allclose(power.predict(p, C=2e8 * 10**20), 1.6 + 10**-1.0, rtol=1e-12)
  named = laws.CHINCHILLA.named(laws.CHINCHILLA.row(FIT))
  np.testing.assert_allclose([named[k] for k in FIT], list(FIT.values()), rtol=1e-12)
  np.testing.assert_allclose(laws.CHINCHILLA.predict(FIT, N=1e9, D=2e10),
                             1.817 + 477.8 / 1e9**0.3473 + 2143 / 2e10**0.3672, rtol=1e-12)


def test_exponents_hand_values():
  assert laws.exponents(0.5, 0.5) == (0.5, 0.5)
  a, b = laws.exponents(0.3473, 0.3672)
  assert a == pytest.approx(0.3672 / 0.7145) and a + b == pytest.approx(1.0)


def test_closed_form_hand_worked():
  # A = B, alpha = beta = 1/2: G = 1, so N_opt = D_opt = sqrt(C / 6)
  N, D = allocation.optimal_6nd(6e20, A=3.0, B=3.0, alpha=0.5, beta=0.5)
  assert N == pytest.approx(1e10) and D == pytest.approx(1e10)


@pytest.mark.parametrize('how', ['flops_per_token', 'flops'])
def test_numeric_equals_closed_form_for_6nd(how):
  C = np.geomspace(1e18, 1e26, 9)
  kw = {'flops_per_token': lambda N: 6 * N} if how == 'flops_per_token' else {
      'flops': lambda N, D: 6 * N * D}
  N, D = allocation.optimal_numeric(C, **FIT, **kw)
  N_ref, D_ref = allocation.optimal_6nd(C, **FIT)
  np.testing.assert_allclose(N, N_ref, rtol=1e-6)
  np.testing.assert_allclose(D, D_ref, rtol=1e-6)


def test_numeric_matches_brute_force_for_another_flops_per_token():
  f = lambda N: 6 * N + 2e9  # a fixed per-token cost on top of 6N, e.g. attention at long context
  C = 1e21
  N_grid = np.geomspace(1e7, 1e12, 200_001)
  L_grid = laws.chinchilla(N_grid, C / f(N_grid), **FIT)
  N, D = allocation.optimal_numeric(C, flops_per_token=f, **FIT)
  assert N == pytest.approx(N_grid[np.argmin(L_grid)], rel=1e-4)
  assert D == pytest.approx(C / f(N), rel=1e-12)


def test_compute_for_loss_inverts_optimal_loss():
  C = np.array([1e19, 1e22, 1e25])
  target = allocation.optimal_loss(C, FIT)
  np.testing.assert_allclose(allocation.compute_for_loss(target, FIT), C, rtol=1e-8)
  assert np.isnan(allocation.compute_for_loss(1.8, FIT))  # below E = 1.817


def test_compute_for_loss_hand_worked():
  # A = B = 1, alpha = beta = 1/2: L_opt(C) = E + 2 (C/6)^(-1/4); L = E + 0.02 at C = 6e8
  p = dict(E=1.0, A=1.0, B=1.0, alpha=0.5, beta=0.5)
  assert allocation.compute_for_loss(1.02, p) == pytest.approx(6e8, rel=1e-8)


def test_derived_over_samples():
  samples = {k: np.array([v, v * 1.01]) for k, v in FIT.items()}
  d = allocation.derived(samples, 1e23)
  np.testing.assert_allclose(d['tokens_per_param'], d['D_opt'] / d['N_opt'])
  np.testing.assert_allclose(d['N_opt'] * d['D_opt'], 1e23 / 6, rtol=1e-12)
  np.testing.assert_allclose(d['a'][0], 0.3672 / 0.7145)
