"""The loss-curve laws (analysis.curve_laws) against hand-computed values and the exact sum, and
Luo et al.'s published parameters on our reading of their public curves."""

import json
import math
import pathlib

import numpy as np
import pytest

from analysis import curve_laws
from analysis import curve_metrics
from analysis import curves
from analysis import schedules

DATA = pathlib.Path(__file__).parent.parent / 'data' / 'multipower'
MANIFEST = json.loads((DATA / 'manifest.json').read_text())
LR5 = np.array([0.0, 0.2, 0.4, 0.4, 0.2, 0.1])  # η_0 … η_5: warmup, a plateau, a decay
MPL5 = dict(L0=2.0, A=0.5, alpha=0.5, B=10.0, C=2.0, beta=0.6, gamma=0.5)


def _exact_multipower(lr_T, t_P, L0, A, alpha, B, C, beta, gamma):
  """The law's sum written out step by step (no merged blocks)."""
  S = np.cumsum(lr_T)
  out = []
  for t in t_P:
    k = np.arange(1, t + 1)
    x = np.maximum(lr_T[k], curve_laws.LR_FLOOR)**-gamma * (S[t] - S[k - 1])
    drop = np.sum((lr_T[k - 1] - lr_T[k]) * (1 - (C * x + 1)**-beta))
    out.append(L0 + A * S[t]**-alpha - B * drop)
  return np.array(out)


def test_multipower_hand_value_on_five_steps():
  # S1(5) = 1.3. Terms k = 1..5: drop η_{k-1} − η_k, area S_k(5), LR η_k (k = 3 drops nothing).
  # By hand: G = 0.68379, 0.59325, 0.39983, 0.25475; Σ drop·G = −0.149967;
  # L = 2 + 0.5/1.140175 + 10 · 0.149967 = 3.93820.
  G = lambda lr, area: 1 - (2.0 * lr**-0.5 * area + 1)**-0.6
  drop = -0.2 * G(0.2, 1.3) - 0.2 * G(0.4, 1.1) + 0.2 * G(0.2, 0.3) + 0.1 * G(0.1, 0.1)
  hand = 2.0 + 0.5 * 1.3**-0.5 - 10.0 * drop
  assert hand == pytest.approx(3.93820, abs=1e-4)
  got = curve_laws.multipower(LR5, np.arange(1, 6), **MPL5)
  assert got[-1] == pytest.approx(hand, rel=1e-13)
  np.testing.assert_allclose(got, _exact_multipower(LR5, range(1, 6), **MPL5), rtol=1e-13)


def test_annealing_hand_value_on_five_steps():
  # The warmup ends at step 2 (the first at the peak 0.4); with λ = 0.5: m_3 = 0,
  # m_4 = 0.2, m_5 = 0.5·0.2 + 0.1 = 0.2, so S2(5) = 0.4.
  got = curve_laws.annealing(LR5, np.array([2, 5]), L0=2.0, A=0.5, alpha=0.5, C=3.0, lam=0.5)
  assert got[1] == pytest.approx(2.0 + 0.5 * 1.3**-0.5 - 3.0 * 0.4, rel=1e-13)
  assert got[0] == pytest.approx(2.0 + 0.5 * 0.6**-0.5, rel=1e-13)
  assert math.isclose(curve_laws.annealing_area(LR5, 0.5)[4], 0.2, rel_tol=1e-13)


def test_parameter_rows_broadcast():
  rows = {k: np.array([[v], [1.1 * v]]) for k, v in MPL5.items()}
  got = curve_laws.multipower(LR5, np.arange(1, 6), **rows)
  assert got.shape == (2, 5)
  np.testing.assert_allclose(got[1], curve_laws.multipower(
      LR5, np.arange(1, 6), **{k: 1.1 * v for k, v in MPL5.items()}), rtol=1e-13)


@pytest.mark.parametrize('name', ['cosine_24000', 'wsdcon_9', 'wsd_20000_24000',
                                  'wsdld_20000_24000'])
def test_merged_sum_is_within_2e5_of_the_exact_sum_on_luo_schedules(name):
  curve = curves.from_csv(DATA / 'csv_25' / f'{name}.csv')
  p = dict(zip(MANIFEST['params_order'], MANIFEST['published_params']['25M']))
  exact = _exact_multipower(curve.lr_T, curve.step_P, **p)
  np.testing.assert_allclose(curve_laws.multipower(curve.lr_T, curve.step_P, **p), exact,
                             rtol=0, atol=2e-5)


def test_merged_sum_at_every_step_of_a_decay_to_zero():
  # Luo et al.'s LR scale (peak 3e-4), where their parameters describe real curves
  lr_T = schedules.from_spec('wsd:steps=3000,peak=3e-4,final=0,warmup=30,cooldown=0.4,shape=sqrt')
  t = np.arange(1, 3001)
  p = dict(zip(MANIFEST['params_order'], MANIFEST['published_params']['100M']))
  np.testing.assert_allclose(curve_laws.multipower(lr_T, t, **p), _exact_multipower(lr_T, t, **p),
                             rtol=0, atol=2e-5)


@pytest.mark.parametrize('size,expected', [('25M', 0.00371), ('100M', 0.00436)])
def test_published_parameters_reproduce_the_published_test_mae(size, expected):
  """Their PARAMS on our reading of their CSVs (LR linear between rows, warmup assumed): within
  5% of the MAE their README reports, and the value the issue measured for this reading."""
  p = dict(zip(MANIFEST['params_order'], MANIFEST['published_params'][size]))
  per_curve = []
  for name in MANIFEST['split']['test']:
    c = curves.from_csv(DATA / f'csv_{size[:-1]}' / f'{name}.csv')
    per_curve.append(curve_metrics.scores(c.loss_P, curve_laws.multipower(c.lr_T, c.step_P, **p)))
  mae = curve_metrics.mean(per_curve)['mae']
  assert mae == pytest.approx(MANIFEST['published_test_means'][size]['mae'], rel=0.05)
  assert round(mae, 5) == expected
