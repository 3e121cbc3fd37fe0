"""Both models' attention: one call that runs the kernel scaling/precision.py picked.

- `cudnn`: jax.nn.dot_product_attention's cuDNN flash attention (GPU, 16-bit).
- `xla`: einsum-softmax-einsum in XLA ops. In float32 it is jax.nn.dot_product_attention's own
  XLA path, the program the models always had; in a 16-bit dtype it is `softmax_attention` here,
  whose QK^T and PV are scaling/models/matmul.py's einsums (16-bit operands, float32 sums, forward
  and backward), where jax's would differentiate its float32 scores into float32 x float32 dots.
- `blocked`: causal attention by query blocks (below), the LM's CPU default from sequence 128.

Causal attention by query blocks: XLA's einsum-softmax-einsum computes all L×L scores, masks half
of them, and differentiates through the masked half too. Here the queries are cut into n_blocks
blocks, and block i scores only the keys up to its own end, so 1 - (n+1)/(2n) of the scores (3/8
for n = 4) are never computed, forward or backward. Each query's softmax still runs over all of
its keys at once, so the result is exact, not an online-softmax approximation; only the diagonal
key block needs a mask. On XLA:CPU the train step is faster for it from sequence 128 on
(docs/performance.md).

The output is named ATTENTION_OUT, which model.remat=dots keeps (layer_stack.REMAT), so that the
backward does not compute PV again to have it.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.ad_checkpoint import checkpoint_name

from scaling.models import matmul

N_BLOCKS = 4  # most of the saving (3/8 of the scores; 1/4 at 2 blocks, 7/16 at 8) in few ops
ATTENTION_OUT = 'attention_out'


def attention(q_BxLxHxK: jax.Array, k_BxLxHxK: jax.Array, v_BxLxHxK: jax.Array,
              scale: float | None, *, causal: bool, kernel: str) -> jax.Array:
  """Softmax attention of q over k and v (`scale` None: 1/√K) by `kernel` ('xla', 'cudnn' or
  'blocked'), in the inputs' dtype."""
  if kernel == 'blocked':
    out_BxLxHxK = softmax_attention(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK, scale, causal=True)
  elif kernel == 'xla' and q_BxLxHxK.dtype != jnp.float32:
    out_BxLxHxK = softmax_attention(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK, scale, causal=causal,
                                    n_blocks=1)
  else:
    out_BxLxHxK = jax.nn.dot_product_attention(q_BxLxHxK, k_BxLxHxK, v_BxLxHxK, scale=scale,
                                               is_causal=causal, implementation=kernel)
  return checkpoint_name(out_BxLxHxK, ATTENTION_OUT)


def softmax_attention(q_BxLxHxK: jax.Array, k_BxSxHxK: jax.Array, v_BxSxHxK: jax.Array,
                      scale: float | None = None, *, causal: bool,
                      n_blocks: int = N_BLOCKS) -> jax.Array:
  """jax.nn.dot_product_attention(q, k, v, scale=scale, is_causal=causal) with the same numerics:
  scores summed in float32, softmax in float32, probabilities cast to v's dtype. Causal attention
  by n_blocks query blocks of ⌈L/n_blocks⌉ (the last one shorter); bidirectional in one."""
  dtype = q_BxLxHxK.dtype
  L, S, K = q_BxLxHxK.shape[1], k_BxSxHxK.shape[1], q_BxLxHxK.shape[-1]
  scale = 1 / np.sqrt(K) if scale is None else scale
  size = -(-L // n_blocks) if causal else L
  # Each causal block reads the keys and values up to its end, so their gradients are sums of the
  # blocks' slices: kept float32 until summed (matmul.einsum returns an operand's gradient in that
  # operand's dtype), they are cast to 16 bits once rather than at every partial sum.
  k_BxSxHxK, v_BxSxHxK = (x.astype(jnp.float32) for x in (k_BxSxHxK, v_BxSxHxK))
  out = []
  for start in range(0, L, size):
    end = min(start + size, L)
    keys = end if causal else S  # a causal block sees no key after its last query
    logits_BxHxQxS = matmul.einsum('bqhk,bshk->bhqs', q_BxLxHxK[:, start:end],
                                   k_BxSxHxK[:, :keys], dtype, jnp.float32) * scale
    if causal:  # key s is visible to query q when s <= q; only keys of this block can be later
      # Computed, not a numpy constant: one L x L constant per layer made 200 MB of the ~350M
      # LM's program lowered for a TPU.
      query_Qx1 = start + jax.lax.broadcasted_iota(jnp.int32, (end - start, 1), 0)
      visible_QxS = jax.lax.broadcasted_iota(jnp.int32, (1, keys), 1) <= query_Qx1
      logits_BxHxQxS = jnp.where(visible_QxS, logits_BxHxQxS, jnp.finfo(jnp.float32).min)
    probs_BxHxQxS = jax.nn.softmax(logits_BxHxQxS, axis=-1).astype(dtype)
    out.append(matmul.einsum('bhqs,bshk->bqhk', probs_BxHxQxS, v_BxSxHxK[:, :keys], dtype))
  return jnp.concatenate(out, axis=1) if len(out) > 1 else out[0]
