"""The fitting engine: data from a known law is recovered, and its intervals cover the truth."""

import itertools

import numpy as np
import pandas as pd
import pytest

from analysis import backtest
from analysis import engine
from analysis import errors
from analysis import intervals
from analysis import laws
from analysis import lbfgs
from analysis import objective

TRUTH = dict(E=1.7, A=400.0, B=1500.0, alpha=0.33, beta=0.30)
LAW = laws.CHINCHILLA


def realistic_grid():
  """8 sizes from 50M to 10B parameters, each at 8 token budgets from 2 to 200 tokens/parameter."""
  N = np.repeat(np.geomspace(5e7, 1e10, 8), 8)
  return N, N * np.tile(np.geomspace(2, 200, 8), 8)


def noisy_logloss(n_sets: int, seed: int) -> np.ndarray:
  N, D = realistic_grid()
  rng = np.random.default_rng(seed)
  return np.log(laws.chinchilla(N, D, **TRUTH)) + np.log1p(0.01 * rng.standard_normal((n_sets,
                                                                                        len(N))))


def problem(law, columns: dict, loss) -> objective.Problem:
  return engine.problem(law, pd.DataFrame({**columns, 'loss': loss}))


def test_grid_is_the_replication_grid():
  starts = LAW.starts()
  assert starts.shape == (4500, 5)
  assert set(starts[:, 0]) == {0, 5, 10, 15, 20, 25} and set(starts[:, 2]) == {-1, -.5, 0, .5, 1}
  assert set(starts[:, 3]) == {0, .5, 1, 1.5, 2}
  assert laws.PowerSum(('C',)).starts().shape == (6 * 5 * 5, 3)


def test_noise_free_fit_is_exact():
  N, D = realistic_grid()
  prob = problem(LAW, {'N': N, 'D': D}, laws.chinchilla(N, D, **TRUTH))
  fit = engine.fit(prob, LAW.starts())
  got = LAW.named(fit.x)
  for k, v in TRUTH.items():
    assert got[k] == pytest.approx(v, rel=1e-4), k


def test_recovery_within_two_bootstrap_standard_errors():
  N, D = realistic_grid()
  loss = np.exp(noisy_logloss(1, seed=7)[0])
  prob = problem(LAW, {'N': N, 'D': D}, loss)
  fit = engine.fit(prob, LAW.starts())
  boot = engine.bootstrap(prob, fit.x, engine.multinomial_weights(len(N), 300, seed=1))
  assert boot.converged.mean() > 0.99
  stderr, _ = intervals.summarize(LAW.named(boot.x[boot.converged]))
  est = LAW.named(fit.x)
  for k, v in TRUTH.items():
    assert abs(est[k] - v) <= 2 * stderr[k], (k, est[k], stderr[k])


def test_95_intervals_cover_truth_in_85_percent_of_50_trials():
  """50 seeded data sets, fitted and bootstrapped (100 resamples each) as one batch.

  Each trial starts from the 32 corners of a box of plausible values (not the truth) instead of
  the 4,500-point grid, polishes its best end point as engine.fit does, and warm-starts its
  resamples there.
  """
  T, R = 50, 100
  N, D = realistic_grid()
  logx, logy_TxP = np.log(np.stack([N, D])), noisy_logloss(T, seed=0)
  box = itertools.product((1.5, 2.5), (100, 1000), (300, 3000), (0.25, 0.45), (0.25, 0.45))
  starts = np.array([LAW.row(dict(zip(TRUTH, corner))) for corner in box])
  S = len(starts)
  model = objective.PowerSum(logx)
  res = lbfgs.minimize(objective.Problem(model, np.repeat(logy_TxP, S, 0), np.ones((1, len(N)))),
                       np.tile(starts, (T, 1)))
  f_TxS = np.where(res.converged, res.f, np.inf).reshape(T, S)
  best_TxQ = res.x.reshape(T, S, -1)[np.arange(T), f_TxS.argmin(1)]
  x_TxQ = engine.refit(objective.Problem(model, logy_TxP, np.ones((1, len(N)))), best_TxQ).x
  weights = np.concatenate([engine.multinomial_weights(len(N), R, seed=t) for t in range(T)])
  boot = engine.refit(objective.Problem(model, np.repeat(logy_TxP, R, 0), weights),
                       np.repeat(x_TxQ, R, 0))
  samples = LAW.named(boot.x.reshape(T, R, -1))
  for k, v in TRUTH.items():
    lo, hi = np.percentile(samples[k], [2.5, 97.5], axis=1)
    assert np.mean((lo <= v) & (v <= hi)) >= 0.85, k


def test_backtest_on_exact_law_predicts_held_out_runs():
  N, D = realistic_grid()
  table = pd.DataFrame({'N': N, 'D': D, 'C': 6 * N * D, 'loss': laws.chinchilla(N, D, **TRUTH)})
  cut = np.quantile(table['C'], 0.75)
  params, held = backtest.backtest(table, cut)
  assert len(held) == (table['C'] > cut).sum() and (held['C'] > cut).all()
  np.testing.assert_allclose(held['rel_error'], 0, atol=1e-4)
  with pytest.raises(errors.InputError, match='C_cut'):
    backtest.backtest(table, table['C'].max())


@pytest.mark.parametrize('law, truth', [
    (laws.PowerSum(('C',)), dict(E=1.5, x0=3e8, alpha=0.07)),  # saturating, in compute
    (laws.PowerSum(('N',), constant=False), dict(x0=8.8e13, alpha=0.076)),  # pure, Kaplan's L(N)
    (laws.PowerSum(('D',), constant=False), dict(x0=5.4e13, alpha=0.095)),  # pure, Kaplan's L(D)
])
def test_one_variable_power_laws_recovered(law, truth):
  x = np.geomspace(1e7, 1e12, 30)
  v = law.variables[0]
  fit = engine.fit(problem(law, {v: x}, law.predict(truth, **{v: x})),
                    law.starts())
  got = law.named(fit.x)
  for k, value in truth.items():
    assert got[k] == pytest.approx(value, rel=1e-3), k


def box_starts():
  """The 32 corners of a box of plausible values (not the truth): a small grid for fast tests."""
  box = itertools.product((1.5, 2.5), (100, 1000), (300, 3000), (0.25, 0.45), (0.25, 0.45))
  return np.array([LAW.row(dict(zip(TRUTH, corner))) for corner in box])


def test_cold_starts_find_the_basin_a_warm_start_hides():
  """Warm-started at a plateau (both power terms underflow to 0, E at the median loss, so every
  gradient is exactly 0), resamples stay on it; the cold ones reach the law and say so."""
  N, D = realistic_grid()
  loss = laws.chinchilla(N, D, **TRUTH)
  prob = problem(LAW, {'N': N, 'D': D}, loss)
  y = np.sort(loss)
  plateau = np.array([-800.0, -800.0, np.log((y[31] + y[32]) / 2), 0.3, 0.3])
  assert not prob(plateau[None], np.zeros(1, int))[1].any()
  boot = engine.bootstrap_with_cold_starts(prob, plateau, engine.multinomial_weights(64, 6, 0),
                                            box_starts(), cold_share=0.5, seed=0)
  assert boot.summary() == {'resamples': 6, 'converged': 6, 'cold_starts': 3,
                            'cold_other_basin_share': 1.0}
  E = LAW.named(boot.x_RxQ)['E']
  np.testing.assert_allclose(E[boot.cold_R], TRUTH['E'], rtol=1e-4)
  assert (np.abs(E[~boot.cold_R] - TRUTH['E']) > 1.0).all()  # the warm ones stayed on the plateau


def test_cold_starts_at_the_optimum_find_no_other_basin():
  N, D = realistic_grid()
  prob = problem(LAW, {'N': N, 'D': D}, np.exp(noisy_logloss(1, seed=3)[0]))
  best = engine.fit(prob, box_starts())
  assert best.converged
  boot = engine.bootstrap_with_cold_starts(prob, best.x, engine.multinomial_weights(64, 4, 1),
                                            box_starts(), cold_share=0.25, seed=0)
  assert boot.summary()['cold_starts'] == 1 and boot.summary()['cold_other_basin_share'] == 0.0


def test_cluster_weights_draw_whole_clusters():
  clusters = np.array(['t1', 't1', 't1', 'solo', 't2', 't2'])
  w = engine.cluster_weights(clusters, 500, seed=0)
  for members in ([0, 1, 2], [4, 5]):
    assert (w[:, members] == w[:, members[:1]]).all()  # a cluster's points are drawn together
  # three clusters drawn three times: the counts of t1, solo and t2 sum to 3 in every resample
  np.testing.assert_array_equal(w[:, 0] + w[:, 3] + w[:, 4], 3)
  assert (w[:, 0] == 0).any() and (w[:, 0] >= 2).any()
  np.testing.assert_array_equal(engine.cluster_weights(np.arange(5), 7, seed=2),
                                engine.multinomial_weights(5, 7, seed=2))


def test_a_fit_is_converged_only_at_a_stationary_point():
  N, D = realistic_grid()
  prob = problem(LAW, {'N': N, 'D': D}, laws.chinchilla(N, D, **TRUTH))
  fit = engine.fit(prob, box_starts())
  assert fit.converged and engine.stationary(prob, fit.x)
  assert not engine.stationary(prob, fit.x + np.array([0, 0, 0, 0.01, 0]))
  assert not engine.stationary(prob, np.array([np.inf, 0, 0, 0.3, 0.3]))
  stuck = lbfgs.minimize(prob, LAW.row(TRUTH)[None] + 0.5, maxiter=2)
  assert not stuck.converged[0] and not engine.stationary(prob, stuck.x[0])


def test_held_coordinates_stay_and_the_rest_are_fitted():
  """E held at the truth on noise-free points: the other four parameters come back exactly."""
  N, D = realistic_grid()
  prob = problem(LAW, {'N': N, 'D': D}, laws.chinchilla(N, D, **TRUTH))
  truth = LAW.row(TRUTH)
  free = np.array([True, True, False, True, True])  # the row is [log A, log B, log E, α, β]
  held = engine.Held(prob, free, truth + np.array([1.0, 1.0, 0.0, 0.1, 0.1]))
  best = engine.fit(held, box_starts()[:, free])
  np.testing.assert_allclose(held.full(best.x[None])[0], truth, rtol=1e-6)
  f_full, g_full = prob(truth[None], np.zeros(1, int))
  f_held, g_held = held(truth[None, free], np.zeros(1, int))
  assert f_held == f_full and (g_held == g_full[:, free]).all()
  assert (held.reweighted(np.full((1, len(N)), 2.0))(truth[None, free], np.zeros(1, int))[1] ==
          2 * g_held).all()


def test_law_fit_names_its_parameters_and_keeps_only_converged_resamples():
  N, D = realistic_grid()
  table = pd.DataFrame({'N': N, 'D': D, 'loss': np.exp(noisy_logloss(1, seed=5)[0])})
  fit = engine.fit_law(LAW, table, engine.multinomial_weights(len(N), 12, seed=0))
  assert list(fit.params) == list(LAW.params) and fit.best.converged
  assert fit.samples is not None and len(fit.samples['E']) == fit.boot.converged_R.sum() == 12
  fit.boot.converged_R[1:] = False  # one converged resample is too few for an interval
  assert fit.samples is None
