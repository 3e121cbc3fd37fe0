"""Approaches 1 and 2 against planted optima and the closed form, and the figures they feed."""

import numpy as np
import pandas as pd
import pytest

from analysis import allocation
from analysis import approaches
from analysis import errors
from analysis import laws
from analysis import plots

FIT = dict(E=1.817, A=477.8, B=2143.0, alpha=0.3473, beta=0.3672)
A_EXP = laws.exponents(FIT['alpha'], FIT['beta'])[0]


def planted_isoflops(exponent=0.5, k=0.1):
  """Exact parabolas in log N whose minima sit at N* = k C^exponent."""
  rows = []
  for C in np.geomspace(1e18, 1e22, 5):
    u_star = np.log(k * C**exponent)
    for u in u_star + np.linspace(-1.5, 1.5, 7):
      rows.append({'C': C * (1 + 0.01 * np.sin(u)), 'N': np.exp(u),
                   'loss': 2 + 0.3 * (u - u_star)**2})
  return pd.DataFrame(rows)


def test_parabola_vertex_hand_worked():
  u = np.linspace(0, 6, 9)
  c = approaches.parabola(u, 2 * (u - 3)**2 + 1)
  np.testing.assert_allclose(c[0], [2, -12, 19], atol=1e-9)
  np.testing.assert_allclose(np.concatenate(approaches.vertex(c)), [3, 1], atol=1e-9)
  assert np.isnan(approaches.vertex(approaches.parabola(u, -u**2))[0][0])  # opens downwards
  two_sizes = np.zeros((1, 9))
  two_sizes[0, [0, 4]] = 5
  assert np.isnan(approaches.parabola(u, u**2, two_sizes)).all()


def test_budgets_group_within_tolerance():
  labels = approaches.budgets([1e19, 1.03e19, 1e20, 0.98e20, 1e21])
  assert list(labels) == [0, 0, 1, 1, 2]


def test_approach2_recovers_planted_exponent():
  opt = approaches.approach2(planted_isoflops(exponent=0.5))
  assert len(opt.table) == 5
  assert opt.n_opt.exponent == pytest.approx(0.5, abs=2e-3)  # budgets carry 1% jitter
  assert opt.d_opt.exponent == pytest.approx(0.5, abs=2e-3)  # D = C / 6N
  boot = approaches.approach2_bootstrap(planted_isoflops(exponent=0.5), 50, seed=0)
  # exact data: a resample matches the point fit unless it drew < 3 sizes of some budget,
  # which then drops out of that resample's regression
  assert np.mean(np.abs(boot['a'] / opt.n_opt.exponent - 1) < 1e-6) > 0.9


def test_approach2_on_chinchilla_law_isoflops_near_closed_form():
  rows = []
  for C in np.geomspace(1e19, 1e23, 5):
    n_star = allocation.optimal_6nd(C, **FIT)[0]
    for N in n_star * np.geomspace(0.3, 3, 9):
      rows.append({'C': C, 'N': N, 'loss': laws.chinchilla(N, C / (6 * N), **FIT)})
  opt = approaches.approach2(pd.DataFrame(rows))
  assert opt.n_opt.exponent == pytest.approx(A_EXP, abs=0.01)


def test_approach2_needs_two_budgets():
  with pytest.raises(errors.InputError, match='IsoFLOP budgets'):
    approaches.approach2(planted_isoflops().iloc[:7])


def test_envelope_hand_worked():
  # run a is better below C = 2, run b above it
  curves = pd.DataFrame({'run': ['a'] * 3 + ['b'] * 3, 'N': [1] * 3 + [2] * 3,
                         'C': [1, 2, 4, 1, 2, 4], 'D': [1, 2, 4, 0.5, 1, 2],
                         'loss': [3.0, 2.0, 1.8, 3.5, 2.0, 1.2]})
  env = approaches.envelope(curves, n_grid=3)
  np.testing.assert_allclose(env['C'], [1, 2, 4])
  assert list(env['N']) == [1, 1, 2] and list(env['loss']) == [3.0, 2.0, 1.2]


def test_approach1_envelope_follows_closed_form():
  rows = []
  for N in np.geomspace(1e7, 1e10, 60):
    D = N * np.geomspace(0.5, 500, 40)
    rows += [{'run': f'{N:.3g}', 'N': N, 'D': d, 'C': 6 * N * d,
              'loss': laws.chinchilla(N, d, **FIT)} for d in D]
  opt = approaches.approach1(pd.DataFrame(rows))
  assert opt.n_opt.exponent == pytest.approx(A_EXP, abs=0.03)
  assert opt.n_opt.exponent + opt.d_opt.exponent == pytest.approx(1.0, abs=1e-6)  # C = 6ND


def test_isoflop_and_tokens_per_param_figures(tmp_path):
  table = planted_isoflops()
  opt = approaches.approach2(table)
  paths = plots.isoflop(table, opt.table, approaches.budgets(table['C']), tmp_path)
  C = np.geomspace(1e19, 1e24, 20)
  paths += plots.tokens_per_param(C, np.full(20, 20.0), (np.full(20, 15.0), np.full(20, 25.0)),
                                  tmp_path)
  assert [p.suffix for p in paths] == ['.png', '.pdf'] * 2
  assert all(p.read_bytes()[:4] in (b'\x89PNG', b'%PDF') for p in paths)
