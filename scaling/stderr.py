"""Standard errors of eval means, carried through the loop's average over eval batches.

A task's eval_fn returns, beside each mean it wants an error bar on, `<name>_moments`: a 2 x S
array holding, for each of S strata, the batch's mean of the per-row values and of their squares
(`moments`). The loop averages every eval field over the batches, which keeps these exact when
every batch holds the same number of rows of each stratum. `from_moments` then gives the standard
error of the overall mean over n rows; metrics.Accounting writes it as `<name>_stderr`.

Rows are treated as independent draws within their stratum: LM eval windows (S = 1), or diffusion
examples stratified by their log-SNR node (S = eval_grid), so the log-SNR spread between strata,
which stratification removes, does not inflate the error. What makes them distinct draws is
checked where they are made: LM windows never overlap (scaling.data.text.check_eval_windows, a
ConfigError naming how many fit), and no held-out image is scored twice (scaling.data.images).
Windows cut from one long document are still neighbours, so the error is that of a sample of
windows, not of documents.
"""

import jax
import jax.numpy as jnp
import numpy as np

SUFFIX = '_moments'


def moments(values_B: jax.Array, stratum_B: jax.Array | None = None,
            n_strata: int = 1) -> jax.Array:
  """[[mean], [mean square]] of values_B per stratum (2 x n_strata); stratum_B None is one stratum."""
  values_B = values_B.astype(jnp.float32)
  if stratum_B is None:
    return jnp.stack([values_B.mean(), jnp.square(values_B).mean()])[:, None]
  onehot_BxS = jax.nn.one_hot(stratum_B, n_strata, dtype=jnp.float32)
  count_S = onehot_BxS.sum(0)
  return jnp.stack([values_B @ onehot_BxS, jnp.square(values_B) @ onehot_BxS]) / count_S


def from_moments(moments_2xS, n: int) -> float | None:
  """Standard error of the mean of n rows split equally over the S strata of moments_2xS.

  The stratified mean is (1/S) sum_s mean_s, with variance (1/S^2) sum_s var_s / m for m = n / S
  rows per stratum; var_s is the unbiased sample variance (factor m / (m - 1)). None when a
  stratum has a single row, which carries no estimate of its spread.
  """
  mean_S, meansq_S = np.asarray(moments_2xS, np.float64)
  S = mean_S.size
  m = n / S
  if m < 2:
    return None
  var_S = np.maximum(meansq_S - np.square(mean_S), 0.0) * m / (m - 1)
  return float(np.sqrt(var_S.sum() / m) / S)
