"""Fitting loss-curve laws with the engine (analysis.curve_study): synthetic curves drawn from a
known law are recovered within their intervals, and the intervals cover the truth."""

import numpy as np
import pytest

from analysis import curve_laws
from analysis import curve_observations
from analysis import curve_specs
from analysis import curve_study
from analysis import curves
from analysis import engine
from analysis import intervals
from analysis import lbfgs
from analysis import objective
from analysis import schedules

TRUTH = dict(L0=1.5, A=0.5, alpha=0.4, B=40.0, C=2.0, beta=0.6, gamma=0.6)
FITTED = ('constant:steps=3000,peak=3e-3,warmup=20',
          'cosine:steps=3000,peak=3e-3,final=3e-4,warmup=20',
          'twostage:steps=3000,peak=3e-3,final=3e-4,warmup=20,switch=1500')
HELD_OUT = ('wsd:steps=3000,peak=3e-3,final=3e-4,warmup=20,cooldown=0.2',
            'cosine:steps=9000,peak=3e-3,final=3e-4,warmup=20')
SIGMA = 0.003  # multiplicative noise of each observation


def _curves(loss_of_spec, step=np.arange(150, 3001, 150)) -> list[curves.Curve]:
  return [curves.Curve(name=spec.split(':')[0], lr_T=schedules.from_spec(spec), step_P=step,
                       loss_P=loss_of_spec(spec, step), first_P=step, last_P=step)
          for spec in FITTED]


def _truth(spec, step):
  return curve_laws.multipower(schedules.from_spec(spec), step, **TRUTH)


def test_fit_recovers_the_law_of_exact_curves():
  fitted = curve_study.fit(_curves(_truth), bootstrap=0)
  assert fitted.best.converged
  for k, v in TRUTH.items():
    assert fitted.params[k] == pytest.approx(v, rel=2e-3), k


def test_fit_recovers_noisy_curves_within_their_intervals():
  rng = np.random.default_rng(3)
  noisy = lambda spec, step: _truth(spec, step) * np.exp(SIGMA * rng.standard_normal(len(step)))
  fitted = curve_study.fit(_curves(noisy), bootstrap=100, seed=1)
  _, ci = intervals.summarize(fitted.samples)
  for k in ('L0', 'A', 'alpha'):
    assert ci[k][0] <= TRUTH[k] <= ci[k][1], (k, ci[k])
  for spec in HELD_OUT:  # held-out schedules' final losses, predicted with a band
    lr_T = schedules.from_spec(spec)
    t = np.array([len(lr_T) - 1])
    _, band = curve_study.fitted_law(fitted).predict(lr_T, t)
    truth = curve_laws.multipower(lr_T, t, **TRUTH)[0]
    assert band[0, 0] <= truth <= band[1, 0], spec


def test_95_intervals_cover_the_truth_in_30_synthetic_studies():
  """30 noisy studies (3 curves of 20 points each), fitted and bootstrapped (30 resamples each)
  in one batch: starts from each study's own grid, polish, warm-started block resamples. The
  predicted final losses of two held-out schedules and L0, A, α are covered in at least 80% of
  the studies (95% nominal; 30 studies put 80% 3.7 binomial standard errors below 95%); every
  parameter's rate is printed (pytest -s)."""
  T, R = 30, 30
  rng = np.random.default_rng(0)
  clean = _curves(_truth)
  law = curve_specs.MultiPower(curve_observations.Observations.of(clean))
  res = law.residuals()
  P = len(law.obs.loss_P)
  logy_TxP = np.log(law.obs.loss_P)[None] + SIGMA * rng.standard_normal((T, P))
  starts = np.concatenate([curve_specs.MultiPower(curve_observations.Observations.of(
      [curves.Curve(c.name, c.lr_T, c.step_P, y, c.first_P, c.last_P)
       for c, y in zip(clean, np.split(np.exp(logy), len(clean)))])).starts()[:4]
                           for logy in logy_TxP])
  S = len(starts) // T
  first = lbfgs.minimize(objective.Problem(res, np.repeat(logy_TxP, S, 0), np.ones((1, P))),
                         starts)
  f_TxS = np.where(first.converged, first.f, np.inf).reshape(T, S)
  best = first.x.reshape(T, S, -1)[np.arange(T), f_TxS.argmin(1)]
  x_TxQ = engine.refit(objective.Problem(res, logy_TxP, np.ones((1, P))), best).x
  weights = np.concatenate([curve_study.block_weights(law.obs, R, seed=t) for t in range(T)])
  boot = engine.refit(objective.Problem(res, np.repeat(logy_TxP, R, 0), weights),
                      np.repeat(x_TxQ, R, 0))
  assert boot.converged.mean() > 0.85
  ok_TxR = boot.converged.reshape(T, R)
  samples = law.named(boot.x.reshape(T, R, -1))
  covered = {k: [] for k in (*TRUTH, *HELD_OUT)}
  for t in range(T):
    mine = {k: v[t][ok_TxR[t]] for k, v in samples.items()}
    for k in TRUTH:
      lo, hi = intervals.ci95(mine[k])
      covered[k].append(lo <= TRUTH[k] <= hi)
    for spec in HELD_OUT:
      lr_T = schedules.from_spec(spec)
      end = np.array([len(lr_T) - 1])
      lo, hi = intervals.ci95(curve_laws.multipower(
          lr_T, end, **{k: v[:, None] for k, v in mine.items()})[:, 0])
      covered[spec].append(lo <= curve_laws.multipower(lr_T, end, **TRUTH)[0] <= hi)
  rates = {k: float(np.mean(v)) for k, v in covered.items()}
  print('coverage of the 95% intervals:', rates)  # shown by pytest -s (docs/analysis.md)
  # B, C, β and γ lie along ridges of the objective (B·β as β → 0; C' against γ): reported, and
  # not held to the bar
  assert all(rates[k] >= 0.8 for k in ('L0', 'A', 'alpha', *HELD_OUT)), rates
