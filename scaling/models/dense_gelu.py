"""gelu(x @ w [+ b]), the first half of both models' MLPs, with a backward written out by hand.

Why: differentiated automatically, the weight gradient x^T·dh made XLA:CPU write the GELU
derivative dh transposed, F x (B·L), from inside the elementwise fusion that computes it: one
strided loop per layer that took 16% of the 3.3M LM's step, as long as a matmul
(docs/performance.md, "Where the time goes"). Computed here as (dh^T·x)^T, the transpose falls
on the small D x F result instead, and dh stays in the layout it is computed in. The maths is
autodiff's: the same GELU derivative (tanh approximation, both models' choice), dx = dh·w^T and
db = Σ dh; tests/test_precision.py checks 10 training steps against the automatic backward.
"""

import jax
import jax.numpy as jnp


def dense_gelu(x_NxD: jax.Array, w_DxF: jax.Array, b_F: jax.Array | None = None) -> jax.Array:
  """x of any leading shape (..., D) -> gelu(x @ w + b), (..., F)."""
  *lead, D = x_NxD.shape
  bias = () if b_F is None else (b_F,)
  return _dense_gelu(x_NxD.reshape(-1, D), w_DxF, bias).reshape(*lead, w_DxF.shape[1])


def _pre_activation(x_NxD, w_DxF, bias):
  h_NxF = x_NxD @ w_DxF
  return h_NxF + bias[0] if bias else h_NxF


def _forward(x_NxD, w_DxF, bias):
  h_NxF = _pre_activation(x_NxD, w_DxF, bias)
  return jax.nn.gelu(h_NxF, approximate=True), (x_NxD, w_DxF, h_NxF, bias)


@jax.custom_vjp
def _dense_gelu(x_NxD, w_DxF, bias):
  return _forward(x_NxD, w_DxF, bias)[0]


def _backward(residuals, g_NxF):
  x_NxD, w_DxF, h_NxF, bias = residuals
  dh_NxF = jax.vjp(lambda h: jax.nn.gelu(h, approximate=True), h_NxF)[1](g_NxF)[0]
  dw_DxF = jnp.einsum('nf,nd->fd', dh_NxF, x_NxD).T
  dbias = tuple(dh_NxF.sum(axis=0).astype(b.dtype) for b in bias)
  return dh_NxF @ w_DxF.T, dw_DxF, dbias


_dense_gelu.defvjp(_forward, _backward)
