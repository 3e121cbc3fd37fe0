"""curve_fit.json and curve_predict.json: what analysis.curve writes, and the one reader of a
curve_fit.json (for `predict` and `choose`). Keys are added, never renamed (docs/analysis.md).
"""

import json
import pathlib

import numpy as np

from analysis import curve_laws
from analysis import curve_metrics
from analysis import curve_study
from analysis import curves as curves_lib
from analysis import engine
from analysis import errors
from analysis import intervals
from analysis import loss_drop

FORMULAS = {
    'multipower': 'L(t) = L0 + A*S1(t)^-alpha - B*sum_{k<=t} (lr_{k-1} - lr_k)*G(lr_k^-gamma * '
                  'S_k(t)), G(x) = 1 - (C*x + 1)^-beta (Luo et al. 2025)',
    'annealing': 'L(t) = L0 + A*S1(t)^-alpha - C*S2(t), S2(t) = sum_{i<=t} m_i, '
                 'm_i = lam*m_{i-1} + (lr_{i-1} - lr_i) (Tissue et al. 2024)',
}
CONVENTIONS = {
    'step': 'step t = t optimizer updates done; lr_t is the LR of the t-th update, lr_0 = 0',
    'S1': 'sum of lr_tau for tau <= t: the area under the LR curve, warmup included (the '
          'paper\'s S1 + S_W; no separate S_W is added)',
    'loss_drop': 'multipower: summed over every step k >= 1, the warmup\'s LR increases included '
                 '(Luo et al.\'s code); merged into blocks far from t (analysis.loss_drop), '
                 'within 2e-5 of the exact sum on their schedules',
    'annealing_momentum': 'annealing: LR changes after the warmup (from the first step at the '
                          'schedule\'s peak) only',
    'lr_floor': f'lr^-gamma uses max(lr, {loss_drop.LR_FLOOR:g}) (Luo et al.\'s OPT_MIN_LR)',
    'objective': 'Huber (delta 1e-3) of log(predicted) - log(observed), summed over every '
                 'observation of every curve',
    'train_loss_rows': 'a train_loss row is the mean of the per-step losses since the row '
                       'before, each before its update: the law\'s mean over steps prev..step-1 '
                       '(three-node rule exact for quadratics)',
}


def _curve_json(c: curves_lib.Curve, predicted: np.ndarray) -> dict:
  """A curve's metrics; for a run's eval losses also the last one's standard error and the final
  error as a multiple of it (the eval set's noise, not the run-to-run noise)."""
  out = {'source': c.source, 'points': len(c.step_P), 'first_step': int(c.first_P[0]),
         'last_step': int(c.step_P[-1]), 'steps': c.steps,
         **curve_metrics.scores(c.loss_P, predicted)}
  if c.stderr_P is not None and np.isfinite(c.stderr_P[-1]) and c.stderr_P[-1] > 0:
    out['eval_stderr'] = float(c.stderr_P[-1])
    out['final_error_in_stderr'] = out['final_error'] / out['eval_stderr']
  return out


def observed_law(fitted: curve_study.FittedLaw, c: curves_lib.Curve) -> np.ndarray:
  """The law at a curve's observations (window means where they are)."""
  t_N, average = c.design()
  loss, _ = fitted.predict(c.lr_T, t_N)
  return average @ loss


def fit_json(result: engine.LawFit) -> dict:
  fitted = curve_study.fitted_law(result)
  per_curve = {c.name: _curve_json(c, observed_law(fitted, c)) for c in result.law.obs.curves}
  out = {'law': result.law.name, 'formula': FORMULAS[result.law.name], 'params': fitted.params,
         'conventions': CONVENTIONS, 'converged': result.best.converged,
         'objective': result.best.objective, 'lr_ref': result.law.obs.lr_ref,
         'curves': per_curve, 'mean': curve_metrics.mean(list(per_curve.values()))}
  if result.law.name == 'annealing':
    out['lambda_fitted'] = bool(getattr(result.law, 'fit_lambda', False))
  if result.boot is not None:
    out['bootstrap'] = {**result.boot.summary(), 'resampled': (
        f'blocks of {curve_study.BLOCK} consecutive observations, within each curve')}
  if fitted.samples is not None:
    out['stderr'], out['ci95'] = intervals.summarize(fitted.samples)
    out['bootstrap_params'] = {k: [float(x) for x in v] for k, v in fitted.samples.items()}
  return out


def read_fit(path: str | pathlib.Path) -> curve_study.FittedLaw:
  """The fitted law in a curve_fit.json (with its bootstrap parameters when it has them)."""
  path = pathlib.Path(path)
  try:
    data = json.loads(path.read_text())
    law, params = data['law'], {k: float(v) for k, v in data['params'].items()}
  except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
    raise errors.InputError(f'--fit={path}: not a curve_fit.json of python -m analysis.curve fit '
                            f'({type(e).__name__}: {e})') from None
  expected = curve_laws.MULTIPOWER_PARAMS if law == 'multipower' else curve_laws.ANNEALING_PARAMS
  if law not in curve_study.LAWS or set(params) != set(expected):
    raise errors.InputError(f'--fit={path}: law {law!r} with parameters {sorted(params)} is not '
                            'one this version predicts with')
  samples = data.get('bootstrap_params')
  return curve_study.FittedLaw(law, params, None if not samples else {
      k: np.asarray(v, float) for k, v in samples.items()})


def predict_json(fitted: curve_study.FittedLaw, curves: list[curves_lib.Curve],
                 fit_path: str) -> dict:
  per_curve = {c.name: _curve_json(c, observed_law(fitted, c)) for c in curves}
  return {'fit': fit_path, 'law': fitted.law, 'params': fitted.params, 'curves': per_curve,
          'mean': curve_metrics.mean(list(per_curve.values()))}
