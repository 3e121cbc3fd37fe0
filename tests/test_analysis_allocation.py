"""Laws and compute-optimal allocation: closed form, numeric search, and hand-worked cases."""

import numpy as np
import pytest

from analysis import allocation
from analysis import laws

FIT = dict(E=1.817, A=477.8, B=2143.0, alpha=0.3473, beta=0.3672)  # the replication's grid fit


def test_law_rows_round_trip_and_predict():
  power = laws.PowerSum(('C',))
  p = dict(E=1.6, x0=2e8, alpha=0.05)
  got = power.named(power.row(p))
  assert got.keys() == p.keys()
  np.testing.assert_allclose([got[k] for k in p], list(p.values()), rtol=1e-12)
  np.testing.assert_allclose(power.predict(p, C=2e8 * 10**20), 1.6 + 10**-1.0, rtol=1e-12)
  named = laws.CHINCHILLA.named(laws.CHINCHILLA.row(FIT))
  np.testing.assert_allclose([named[k] for k in FIT], list(FIT.values()), rtol=1e-12)
  np.testing.assert_allclose(laws.CHINCHILLA.predict(FIT, N=1e9, D=2e10),
                             1.817 + 477.8 / 1e9**0.3473 + 2143 / 2e10**0.3672, rtol=1e-12)


def brute_force_n_opt(C: float, ratio, lo=1e5, hi=1e14, n=400_001) -> float:
  """argmin over a fine log grid of N of L(N, C / (ratio(N)·N)) under FIT."""
  N = np.geomspace(lo, hi, n)
  return N[np.argmin(laws.chinchilla(N, C / (ratio(N) * N), **FIT))]


def test_exponents_are_the_slopes_of_brute_force_allocations():
  # N_opt read off a grid at two budgets four decades apart: its slope in log-log is a
  six = lambda N: np.full_like(N, 6.0)
  slope = np.log(brute_force_n_opt(1e24, six) / brute_force_n_opt(1e20, six)) / np.log(1e4)
  a, b = laws.exponents(FIT['alpha'], FIT['beta'])
  assert a == pytest.approx(slope, abs=2e-4)
  assert laws.exponents(0.5, 0.5) == (0.5, 0.5)
  assert b == pytest.approx(1 - slope, abs=2e-4)  # D_opt = C / (6 N_opt)


def test_closed_form_hand_worked():
  # A = B, alpha = beta = 1/2: G = 1, so N_opt = D_opt = sqrt(C / 6)
  N, D = allocation.optimal_6nd(6e20, A=3.0, B=3.0, alpha=0.5, beta=0.5)
  assert N == pytest.approx(1e10) and D == pytest.approx(1e10)


def test_numeric_equals_closed_form_for_6nd():
  C = np.geomspace(1e18, 1e26, 9)
  N, D = allocation.optimal_numeric(C, **FIT, flops_per_token=lambda N: 6 * N)
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


def test_derived_over_samples_equals_one_sample_at_a_time():
  samples = {k: np.array([v, v * 1.01]) for k, v in FIT.items()}
  d = allocation.derived(samples, 1e23)
  for i in range(2):
    one = allocation.derived({k: v[i] for k, v in samples.items()}, 1e23)
    for key in one:
      assert d[key][i] == pytest.approx(one[key], rel=1e-12), key
  six = lambda N: np.full_like(N, 6.0)
  assert d['N_opt'][0] == pytest.approx(brute_force_n_opt(1e23, six), rel=1e-4)
  assert d['D_opt'][0] == pytest.approx(1e23 / (6 * brute_force_n_opt(1e23, six)), rel=1e-4)


def ladder(ratio, n_sizes=9):
  """A table of runs, 3 token counts per size, whose FLOPs are C = ratio(N)·N·D; D integer."""
  N = np.repeat(np.geomspace(1e7, 1e11, n_sizes), 3)
  D = np.round(N * np.tile([5.0, 20.0, 80.0], n_sizes))
  return N, D, ratio(N) * N * D


def test_table_at_twice_6nd_gives_the_6nd_answer_at_half_the_budget():
  N, D, C_table = ladder(lambda N: np.full_like(N, 12.0))
  compute = allocation.Compute.from_table(N, D, C_table)
  assert compute.convention == 'table' and compute.to_json()['ratio_range'] == [12.0, 12.0]
  C = np.geomspace(1e19, 1e25, 7)
  N_opt, D_opt = allocation.optimal(C, FIT, compute)
  N_6nd, D_6nd = allocation.optimal_6nd(C / 2, **FIT)
  np.testing.assert_allclose(N_opt, N_6nd, rtol=1e-3)
  np.testing.assert_allclose(D_opt, D_6nd, rtol=1e-3)
  # and the numeric solver, which the constant case skips, agrees with the closed form too
  N_num, _ = allocation.optimal_numeric(C, flops_per_token=compute.flops_per_token, **FIT)
  np.testing.assert_allclose(N_num, N_6nd, rtol=1e-6)


def dit_like(N):
  """C/(N·D) falling from 3.6 at N = 1e7 to 2.1 at N = 1e11 (C/6ND 0.60 to 0.35), linear in
  log N, so interpolating the table in log N is exact."""
  return 3.6 - 0.375 * np.log10(N / 1e7)


@pytest.mark.parametrize('C', [1e20, 1e22])
def test_varying_ratio_solved_like_a_brute_force_grid(C):
  compute = allocation.Compute.from_table(*ladder(dit_like))
  assert not compute.constant
  np.testing.assert_allclose(compute.ratio(np.array([3e7, 2e10])), dit_like(np.array([3e7, 2e10])),
                             rtol=1e-12)
  N_star = brute_force_n_opt(C, dit_like, lo=1e7, hi=1e11)
  assert 1e7 < N_star < 1e11  # the optimum lies among the sizes of the table
  N, D = allocation.optimal(C, FIT, compute)
  assert N == pytest.approx(N_star, rel=1e-4)
  assert D == pytest.approx(C / (dit_like(N_star) * N_star), rel=1e-4)
  assert N != pytest.approx(allocation.optimal_6nd(C, **FIT)[0], rel=0.05)  # 6ND would be wrong
  # the local exponent: the slope of the brute-force optimum over a small step in log C
  slope = np.log(brute_force_n_opt(C * 1.5, dit_like, lo=1e7, hi=1e11, n=2_000_001) /
                 brute_force_n_opt(C / 1.5, dit_like, lo=1e7, hi=1e11, n=2_000_001)) / np.log(2.25)
  assert allocation.derived(FIT, C, compute)['a_local'] == pytest.approx(slope, abs=2e-3)


def test_ratio_is_held_at_the_end_values_outside_the_table():
  compute = allocation.Compute.from_table(*ladder(dit_like))
  np.testing.assert_allclose(compute.ratio(np.array([1e3, 1e15])), [3.6, 2.1], rtol=1e-12)
  again = allocation.Compute.from_json(compute.to_json())
  np.testing.assert_array_equal(again.ratio(np.geomspace(1e5, 1e13, 50)),
                                compute.ratio(np.geomspace(1e5, 1e13, 50)))


def test_compute_for_loss_inverts_optimal_loss_under_a_varying_ratio():
  compute = allocation.Compute.from_table(*ladder(dit_like))
  C = np.array([1e19, 1e21, 1e23])
  target = allocation.optimal_loss(C, FIT, compute)
  np.testing.assert_allclose(allocation.compute_for_loss(target, FIT, compute), C, rtol=1e-6)


def test_within_reason_refuses_below_the_smallest_model_and_warns_far_beyond():
  fitted = {'N': [1e8, 1e10], 'D': [1e9, 1e12], 'C': [1e18, 1e22]}
  a = laws.exponents(FIT['alpha'], FIT['beta'])[0]
  G = (FIT['alpha'] * FIT['A'] / (FIT['beta'] * FIT['B']))**(1 / (FIT['alpha'] + FIT['beta']))
  smallest = 6 * (1e8 / G)**(1 / a)  # N_opt = G (C/6)^a = 1e8, solved by hand
  assert allocation.within_reason(smallest * 1.001, FIT, None, fitted, 'C') is None
  with pytest.raises(allocation.errors.InputError, match='plan a budget of at least') as e:
    allocation.within_reason(smallest * 0.999, FIT, None, fitted, '--flops=x')
  assert float(str(e.value).split('at least ')[1]) == pytest.approx(smallest, rel=5e-3)  # 3 digits
  assert allocation.within_reason(0.999e25, FIT, None, fitted, 'C') is None  # within 1000x
  assert '1.01e+03x beyond' in allocation.within_reason(1.01e25, FIT, None, fitted, 'C')
  assert 'no fitted_range' in allocation.within_reason(1e20, FIT, None, None, 'C')
