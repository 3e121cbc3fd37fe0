"""Backtest: fit on the runs with C ≤ C_cut, then score the prediction for every larger run."""

import pandas as pd

from analysis import engine
from analysis import errors
from analysis import laws


def backtest(table: pd.DataFrame, c_cut: float,
             law: laws.PowerSum = laws.CHINCHILLA) -> tuple[dict, pd.DataFrame]:
  """Fitted parameters, and held-out rows with `predicted` and `rel_error` = predicted/loss − 1."""
  train, held = table[table['C'] <= c_cut], table[table['C'] > c_cut]
  if len(train) < law.n_params or not len(held):
    raise errors.InputError(f'C_cut={c_cut:.3g} leaves {len(train)} points to fit and {len(held)} '
                            f'to predict: need >= {law.n_params} and >= 1; move the cut')
  params = engine.fit_law(law, train).params
  held = held.copy()
  held['predicted'] = law.predict(params, **{v: held[v].to_numpy() for v in law.variables})
  held['rel_error'] = held['predicted'] / held['loss'] - 1
  return params, held.reset_index(drop=True)


def noise_note(held: pd.DataFrame) -> str:
  """The backtest's error beside the noise of the measurements it predicts."""
  err = held['rel_error'].abs()
  line = (f'backtest error: mean |predicted/measured − 1| {err.mean():.2%} over {len(held)} '
          f'held-out points, largest {err.max():.2%}; ')
  se = (held['loss_stderr'] / held['loss']).dropna() if 'loss_stderr' in held else pd.Series()
  if not len(se):
    return line + 'no eval standard errors logged, so the measurement noise is unknown'
  return line + (f'median eval standard error {se.median():.2%} of the loss, so the error is '
                 f'{err.mean() / se.median():.3g}× the noise' if se.median() > 0 else
                 'eval standard error 0')
