"""gelu(x @ w [+ b]), the first half of both models' MLPs, with a backward written out by hand.

Why: differentiated automatically, the weight gradient x^T·dh made XLA:CPU write the GELU
derivative dh transposed, F x (B·L), from inside the elementwise fusion that computes it: one
strided loop per layer that took 16% of the 3.3M LM's step, as long as a matmul
(docs/performance.md, "Where the time goes"). Computed here in float32 as (dh^T·x)^T, the
transpose falls on the small D x F result instead, and dh stays in the layout it is computed in.
In a 16-bit dtype the matmuls are scaling/models/matmul.py's, forward and backward (16-bit
operands, float32 sums), and the GELU and its derivative are computed in float32 on the float32
pre-activation. The maths is autodiff's: the same GELU derivative (tanh approximation, both
models' choice), dx = dh·w^T and db = Σ dh; tests/test_precision.py checks 10 training steps
against the automatic backward, and the gradients against autodiff's in both dtypes.
"""

import jax
import jax.numpy as jnp
from jax.ad_checkpoint import checkpoint_name

from scaling.models import matmul



def _spec(x_BxLxD: jax.Array) -> str:
  lead = 'abceghij'[:x_BxLxD.ndim - 1]  # any leading axes, summed as separate axes (backward)
  return f'{lead}d,df->{lead}f'


def dense_gelu(x_BxLxD: jax.Array, w_DxF: jax.Array, b_F: jax.Array | None = None) -> jax.Array:
  """x of any leading shape (..., D), in the compute dtype -> gelu(x @ w + b), (..., F), in the
  same dtype; w and b are cast to it (a float32 w's gradient stays float32)."""
  return _dense_gelu(x_BxLxD, w_DxF, () if b_F is None else (b_F,))


def _pre_activation(x_BxLxD, w_DxF, bias):
  """x @ w + b, summed and returned in float32."""
  h_BxLxF = jnp.einsum(_spec(x_BxLxD), x_BxLxD, w_DxF.astype(x_BxLxD.dtype),
                       preferred_element_type=jnp.float32)
  return h_BxLxF + bias[0].astype(x_BxLxD.dtype) if bias else h_BxLxF


def _forward(x_BxLxD, w_DxF, bias):
  h_BxLxF = _pre_activation(x_BxLxD, w_DxF, bias)
  out_BxLxF = jax.nn.gelu(h_BxLxF, approximate=True).astype(x_BxLxD.dtype)
  # Kept in the compute dtype, and named so that model.remat=dots keeps it (layer_stack.REMAT).
  h_BxLxF = checkpoint_name(h_BxLxF.astype(x_BxLxD.dtype), matmul.NO_BATCH_DIMS)
  return out_BxLxF, (x_BxLxD, w_DxF, h_BxLxF, bias)


@jax.custom_vjp
def _dense_gelu(x_BxLxD, w_DxF, bias):
  return _forward(x_BxLxD, w_DxF, bias)[0]


def _backward(residuals, g_BxLxF):
  x_BxLxD, w_DxF, h_BxLxF, bias = residuals
  dtype, F = x_BxLxD.dtype, w_DxF.shape[1]
  gelu = lambda h: jax.nn.gelu(h, approximate=True)
  dh_BxLxF = jax.vjp(gelu, h_BxLxF.astype(jnp.float32))[1](g_BxLxF.astype(jnp.float32))[0]
  dh_NxF = dh_BxLxF.astype(dtype).reshape(-1, F)
  dbias = tuple(dh_NxF.astype(jnp.float32).sum(axis=0).astype(b.dtype) for b in bias)
  if dtype == jnp.float32:
    x_NxD = x_BxLxD.reshape(-1, x_BxLxD.shape[-1])
    dw_DxF = jnp.einsum('nf,nd->fd', dh_NxF, x_NxD).T
    return (dh_NxF @ w_DxF.T).reshape(x_BxLxD.shape), dw_DxF, dbias
  # matmul.einsum's own backward: 16-bit products of dh, summed in float32 over batch and
  # positions as two axes, which XLA:CPU's bf16 matmul takes without an f32 detour.
  pullback = jax.vjp(lambda x, w: matmul.einsum(_spec(x_BxLxD), x, w, dtype), x_BxLxD, w_DxF)[1]
  dx_BxLxD, dw_DxF = pullback(dh_BxLxF.astype(dtype))
  return dx_BxLxD, dw_DxF, dbias


_dense_gelu.defvjp(_forward, _backward)
