"""How well a predicted loss curve matches an observed one: the metrics of Luo et al.'s
evaluation (src/evaluation.py), plus the error at the last step.

Per curve: r2 (1 − SS_res/SS_tot over the curve's points, sklearn's r2_score), mae, rmse, pred_e
(mean |error|/loss), worst_e (max |error|/loss) and final_error (predicted − observed at the last
point). Over several curves, `mean` averages each metric over the curves, as their README's
table does.
"""

import numpy as np

METRICS = ('r2', 'mae', 'rmse', 'pred_e', 'worst_e', 'final_error')


def scores(observed_P: np.ndarray, predicted_P: np.ndarray) -> dict[str, float]:
  observed_P, predicted_P = np.asarray(observed_P, float), np.asarray(predicted_P, float)
  error = predicted_P - observed_P
  total = np.sum((observed_P - observed_P.mean())**2)
  relative = np.abs(error) / observed_P
  return {'r2': float(1 - np.sum(error**2) / total) if total > 0 else float('nan'),
          'mae': float(np.mean(np.abs(error))), 'rmse': float(np.sqrt(np.mean(error**2))),
          'pred_e': float(relative.mean()), 'worst_e': float(relative.max()),
          'final_error': float(error[-1])}


def mean(per_curve: list[dict[str, float]]) -> dict[str, float]:
  return {k: float(np.mean([s[k] for s in per_curve])) for k in METRICS}
