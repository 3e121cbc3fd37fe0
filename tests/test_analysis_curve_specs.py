"""The loss-curve laws as engine specs (analysis.curve_specs): the normalised row against the law
in the curves' units, the analytic gradient against central differences, window averaging."""

import json
import pathlib

import numpy as np
import pytest

from analysis import curve_laws
from analysis import curve_observations
from analysis import curve_specs
from analysis import curves
from analysis import objective
from analysis import schedules

DATA = pathlib.Path(__file__).parent.parent / 'data' / 'multipower'
MANIFEST = json.loads((DATA / 'manifest.json').read_text())
PUBLISHED = dict(zip(MANIFEST['params_order'], MANIFEST['published_params']['25M']))


def _observations():
  return curve_observations.Observations.of(
      [curves.from_csv(DATA / 'csv_25' / f'{n}.csv') for n in ('wsdcon_9', 'cosine_24000')])


def test_multipower_row_is_the_law_in_the_curves_units():
  law = curve_specs.MultiPower(_observations())
  row = law.row(PUBLISHED)
  named = law.named(row)
  assert all(named[k] == pytest.approx(v, rel=1e-12) for k, v in PUBLISHED.items())
  r, _ = law.residuals()(row[None], np.zeros((1, len(law.obs.loss_P))))
  direct = np.concatenate([curve_laws.multipower(c.lr_T, c.step_P, **PUBLISHED)
                           for c in law.obs.curves])
  np.testing.assert_allclose(np.exp(r[0]), direct, rtol=1e-12)


@pytest.mark.parametrize('fit_lambda', [False, True])
def test_annealing_row_is_the_law_in_the_curves_units(fit_lambda):
  law = curve_specs.Annealing(_observations(), fit_lambda=fit_lambda)
  p = dict(L0=3.1, A=0.5, alpha=0.5, C=0.4, lam=0.998 if fit_lambda else 0.999)
  row = law.row(p)
  assert all(law.named(row)[k] == pytest.approx(v, rel=1e-12) for k, v in p.items())
  direct = np.concatenate([curve_laws.annealing(c.lr_T, c.step_P, **p) for c in law.obs.curves])
  np.testing.assert_allclose(np.exp(law.log_predict(row[None])[0]), direct, rtol=1e-12)


def test_multipower_gradient_matches_central_differences():
  law = curve_specs.MultiPower(_observations())
  rng = np.random.default_rng(0)
  rows = law.row(PUBLISHED) + rng.normal(0, 0.05, (3, 7))
  weights = rng.multinomial(len(law.obs.loss_P), np.full(len(law.obs.loss_P),
                                                         1 / len(law.obs.loss_P)), 3)
  prob = objective.Problem(law.residuals(), np.log(law.obs.loss_P)[None], weights.astype(float),
                           delta=10.0)  # the quadratic regime: every residual contributes
  _, g = prob(rows, np.arange(3))
  eps = 1e-6
  for q in range(7):
    step = np.zeros(7)
    step[q] = eps
    numeric = (prob(rows + step, np.arange(3))[0] - prob(rows - step, np.arange(3))[0]) / (2 * eps)
    np.testing.assert_allclose(g[:, q], numeric, rtol=1e-5, atol=1e-12)


def test_a_train_window_is_the_mean_of_the_law_over_its_steps():
  """A train_loss row at step 100 after one at 50 averages the law over steps 50..99 (each step's
  loss is taken before its update): the three-node rule is exact for quadratics; on the law itself
  it is within 2e-4 (relative) of the mean in the first window after a warmup like ours, where the
  loss falls by 10% within the window, and within 1e-6 later on."""
  lr_T = schedules.from_spec('wsd:steps=6000,peak=3e-3,warmup=20,cooldown=0.2')
  for first, last, rtol in ((50, 99, 2e-4), (5000, 5049, 1e-6)):
    curve = curves.Curve(name='w', lr_T=lr_T, step_P=np.array([last + 1]),
                         loss_P=np.array([3.0]), first_P=np.array([first]),
                         last_P=np.array([last]))
    t_N, average = curve.design()
    quadratic = lambda t: 2.0 + 0.01 * t - 3e-4 * t**2
    window = np.arange(first, last + 1)
    assert (average @ quadratic(t_N))[0] == pytest.approx(quadratic(window).mean(), rel=1e-12)
    law = lambda t: curve_laws.multipower(lr_T, t, **PUBLISHED)
    assert (average @ law(t_N))[0] == pytest.approx(law(window).mean(), rel=rtol)
