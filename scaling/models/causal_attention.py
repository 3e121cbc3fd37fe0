"""Causal attention by query blocks: XLA ops that skip the masked part of the scores.

XLA's einsum-softmax-einsum (jax.nn.dot_product_attention's `xla` path) computes all L×L scores,
masks half of them, and differentiates through the masked half too. Here the queries are cut
into N_BLOCKS blocks, and block i scores only the keys up to its own end, so 1 - (n+1)/(2n) of
the scores (3/8 for n = 4) are never computed, forward or backward. Each query's softmax still
runs over all of its keys at once, so the result is exact, not an online-softmax approximation;
only the diagonal key block needs a mask. On XLA:CPU the train step is faster for it from
sequence 128 on (docs/performance.md); on a GPU in bf16, `attention=auto` takes cuDNN's fused
kernel instead (scaling/precision.py).
"""

import jax
import jax.numpy as jnp
import numpy as np

N_BLOCKS = 4  # most of the saving (3/8 of the scores; 1/4 at 2 blocks, 7/16 at 8) in few ops


def blocked_causal_attention(q_BxLxHxK: jax.Array, k_BxLxHxK: jax.Array, v_BxLxHxK: jax.Array,
                             scale: float | None = None, n_blocks: int = N_BLOCKS) -> jax.Array:
  """jax.nn.dot_product_attention(q, k, v, scale=scale, is_causal=True) with the same numerics:
  scores accumulated in float32, softmax in float32, probabilities cast to v's dtype. `scale`
  None is 1/√K. Any L: the blocks are ⌈L/n_blocks⌉ long, the last one shorter."""
  L, K = q_BxLxHxK.shape[1], q_BxLxHxK.shape[-1]
  scale = 1 / np.sqrt(K) if scale is None else scale
  size = -(-L // n_blocks)
  out = []
  for start in range(0, L, size):
    end = min(start + size, L)
    logits_BxHxQxS = jnp.einsum('bqhk,bshk->bhqs', q_BxLxHxK[:, start:end], k_BxLxHxK[:, :end],
                                preferred_element_type=jnp.float32) * scale
    # Key s is visible to query q when s <= q; only keys of this block can be later than q.
    visible_QxS = np.arange(end)[None, :] <= np.arange(start, end)[:, None]
    logits_BxHxQxS = jnp.where(visible_QxS, logits_BxHxQxS, jnp.finfo(jnp.float32).min)
    probs_BxHxQxS = jax.nn.softmax(logits_BxHxQxS, axis=-1).astype(v_BxLxHxK.dtype)
    out.append(jnp.einsum('bhqs,bshk->bqhk', probs_BxHxQxS, v_BxLxHxK[:, :end]))
  return jnp.concatenate(out, axis=1)
