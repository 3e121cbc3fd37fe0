"""Decoder-only transformer: pre-norm RMSNorm, RoPE, causal attention, GELU or SwiGLU MLP, no biases.

Parameters are float32 and carry logical axis names (scaling.sharding maps them to the mesh);
the forward pass computes in `dtype` and keeps norms, softmax and logits in float32. Every matmul
is scaling/models/matmul.py's: its operands in `dtype`, its sums in float32, forward and backward.
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from ml_collections import config_dict

from scaling import precision
from scaling.models import initialization, layer_stack, matmul
from scaling.models.attention import attention
from scaling.models.dense_gelu import dense_gelu


def param(rngs: nnx.Rngs, rule: initialization.Rule, shape: tuple[int, ...],
          names: tuple) -> nnx.Param:
  # eager_sharding=False: the mesh is applied by jit out_shardings, not at construction.
  return nnx.Param(rule.initializer()(rngs.params(), shape), out_sharding=names,
                   eager_sharding=False)


class RMSNorm(nnx.Module):

  def __init__(self, dim: int, rule: initialization.Rule, *, rngs: nnx.Rngs):
    self.scale = param(rngs, rule, (dim,), (None,))

  @jax.named_scope('norm')  # the scopes name each op's layer in profiles (benchmarks/profile_step)
  def __call__(self, x_BxLxD: jax.Array) -> jax.Array:
    x = x_BxLxD.astype(jnp.float32)
    x = x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + 1e-6)
    return (x * self.scale[...]).astype(x_BxLxD.dtype)


def rope_table(seq_len: int, head_dim: int,
               max_wavelength: float = 10_000.0) -> tuple[np.ndarray, np.ndarray]:
  """(sin, cos) of RoPE's angles, each 1 x L x 1 x K/2, float32, exact in float64 before the cast."""
  freq_K2 = max_wavelength ** (-np.arange(head_dim // 2) / (head_dim // 2))
  angle_LxK2 = np.arange(seq_len)[:, None] * freq_K2[None, :]
  return tuple(f(angle_LxK2).astype(np.float32)[None, :, None, :] for f in (np.sin, np.cos))


def rope(x_BxLxHxK: jax.Array, table: tuple[jax.Array, jax.Array]) -> jax.Array:
  """Rotary embedding on the two halves of each head, in float32, by `rope_table`'s (sin, cos)."""
  sin, cos = table
  x1, x2 = jnp.split(x_BxLxHxK.astype(jnp.float32), 2, axis=-1)
  out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  return out.astype(x_BxLxHxK.dtype)


class CausalAttention(nnx.Module):

  def __init__(self, cfg: config_dict.ConfigDict, *, dtype, rngs: nnx.Rngs):
    D, H = cfg.d_model, cfg.n_head
    K = D // H
    self.dtype = dtype
    self.scale = initialization.attention_scale(cfg, K)  # None: sp's 1/√K
    self.kernel = precision.attention_kernel(cfg.get('attention', 'auto'), jnp.dtype(dtype).name, K,
                                             causal=True, seq_len=cfg.seq_len)
    rules = initialization.lm_rules(cfg)
    self.wq = param(rngs, rules['attn/wq'], (D, H, K), ('embed', 'heads', 'kv'))
    self.wk = param(rngs, rules['attn/wk'], (D, H, K), ('embed', 'heads', 'kv'))
    self.wv = param(rngs, rules['attn/wv'], (D, H, K), ('embed', 'heads', 'kv'))
    self.wo = param(rngs, rules['attn/wo'], (H, K, D), ('heads', 'kv', 'embed'))

  @jax.named_scope('attention')
  def __call__(self, x_BxLxD: jax.Array,
               rope_sin_cos: tuple[jax.Array, jax.Array] | None = None) -> jax.Array:
    """`rope_sin_cos`: the model's table (Transformer); None, this call's own, for a caller that
    runs one block alone (experiments/init_report.py)."""
    if rope_sin_cos is None:
      rope_sin_cos = rope_table(x_BxLxD.shape[1], self.wq.shape[-1])
    project = lambda p: matmul.einsum('bld,dhk->blhk', x_BxLxD, p[...], self.dtype)
    q_BxLxHxK = rope(project(self.wq), rope_sin_cos)
    k_BxLxHxK = rope(project(self.wk), rope_sin_cos)
    # Scores and softmax in float32 (XLA paths); cuDNN's fused kernel on a GPU in bf16.
    out_BxLxHxK = attention(q_BxLxHxK, k_BxLxHxK, project(self.wv), self.scale, causal=True,
                            kernel=self.kernel)
    return matmul.einsum('blhk,hkd->bld', out_BxLxHxK, self.wo[...], self.dtype)


class Mlp(nnx.Module):

  def __init__(self, cfg: config_dict.ConfigDict, *, dtype, rngs: nnx.Rngs):
    D, F = cfg.d_model, cfg.d_ff
    self.dtype, self.kind = dtype, cfg.mlp
    rules = initialization.lm_rules(cfg)
    self.w_in = param(rngs, rules['mlp/w_in'], (D, F), ('embed', 'mlp'))
    if cfg.mlp == 'swiglu':
      self.w_gate = param(rngs, rules['mlp/w_gate'], (D, F), ('embed', 'mlp'))
    self.w_out = param(rngs, rules['mlp/w_out'], (F, D), ('mlp', 'embed'))

  @jax.named_scope('mlp')
  def __call__(self, x_BxLxD: jax.Array) -> jax.Array:
    if self.kind == 'swiglu':
      project = lambda p: matmul.einsum('bld,df->blf', x_BxLxD, p[...], self.dtype)
      h_BxLxF = project(self.w_in) * jax.nn.silu(project(self.w_gate))
    else:
      h_BxLxF = dense_gelu(x_BxLxD, self.w_in[...])
    return matmul.einsum('blf,fd->bld', h_BxLxF, self.w_out[...], self.dtype)


class Block(nnx.Module):

  def __init__(self, cfg: config_dict.ConfigDict, *, dtype, rngs: nnx.Rngs):
    rules = initialization.lm_rules(cfg)
    self.attn_norm = RMSNorm(cfg.d_model, rules['attn_norm/scale'], rngs=rngs)
    self.attn = CausalAttention(cfg, dtype=dtype, rngs=rngs)
    self.mlp_norm = RMSNorm(cfg.d_model, rules['mlp_norm/scale'], rngs=rngs)
    self.mlp = Mlp(cfg, dtype=dtype, rngs=rngs)

  def __call__(self, x_BxLxD: jax.Array, rope_sin_cos: tuple[jax.Array, jax.Array]) -> jax.Array:
    x_BxLxD = x_BxLxD + self.attn(self.attn_norm(x_BxLxD), rope_sin_cos)
    return x_BxLxD + self.mlp(self.mlp_norm(x_BxLxD))


class Transformer(nnx.Module):
  """tokens_BxL (int) -> logits_BxLxV (float32)."""

  def __init__(self, cfg: config_dict.ConfigDict, *, dtype=jnp.float32, rngs: nnx.Rngs):
    V, D = cfg.vocab_size, cfg.d_model
    self.dtype, self.tied, self.head_dim = dtype, cfg.tied_embeddings, D // cfg.n_head
    self.scan_layers, self.remat = cfg.get('scan_layers', False), cfg.get('remat', 'none')
    self.output_multiplier = initialization.output_multiplier(cfg)  # μP's base/width; None: sp
    rules = initialization.lm_rules(cfg)
    self.embed = param(rngs, rules['embed'], (V, D), ('vocab', 'embed'))
    self.blocks = layer_stack.make(lambda r: Block(cfg, dtype=dtype, rngs=r), cfg.n_layer, rngs,
                                   scan=self.scan_layers)
    self.out_norm = RMSNorm(D, rules['out_norm/scale'], rngs=rngs)
    if not cfg.tied_embeddings:
      self.unembed = param(rngs, rules['unembed'], (D, V), ('embed', 'vocab'))

  def __call__(self, tokens_BxL: jax.Array) -> jax.Array:
    with jax.named_scope('embed'):
      # The rows gathered, then cast: the gradient's scatter-add into the table stays float32.
      x_BxLxD = self.embed[...][tokens_BxL].astype(self.dtype)
    # One table of RoPE's sines and cosines for every layer: numpy constants of the program
    # (computed with jnp, XLA:CPU fused them into each consumer and evaluated them again for
    # every head and batch row, docs/performance.md), made once here rather than in each layer,
    # where the lowered program held a copy per layer and per q and k (96 for 24 layers).
    table = tuple(jnp.asarray(t) for t in rope_table(tokens_BxL.shape[1], self.head_dim))
    x_BxLxD = layer_stack.apply(self.blocks, x_BxLxD, table, scan=self.scan_layers,
                                remat=self.remat)
    x_BxLxD = self.out_norm(x_BxLxD)
    with jax.named_scope('unembed'):
      # float32 logits; in bf16 the backward casts their cotangent to bf16 (matmul.py). The tied
      # table is read as it is stored, V x D: a transpose of it would fall on its bf16 gradient,
      # which XLA:CPU then folds into a product it cannot run (matmul._product).
      spec, w = ('bld,vd->blv', self.embed) if self.tied else ('bld,dv->blv', self.unembed)
      logits_BxLxV = matmul.einsum(spec, x_BxLxD, w[...], self.dtype, jnp.float32)
    return logits_BxLxV if self.output_multiplier is None else logits_BxLxV * self.output_multiplier
