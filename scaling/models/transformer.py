"""Decoder-only transformer: pre-norm RMSNorm, RoPE, causal attention, GELU or SwiGLU MLP, no biases.

Parameters are float32 and carry logical axis names (scaling.sharding maps them to the mesh);
the forward pass computes in `dtype` and keeps norms, softmax and logits in float32.
"""

import jax
import jax.numpy as jnp
from flax import nnx
from ml_collections import config_dict

Init = nnx.initializers.Initializer


def param(rngs: nnx.Rngs, init: Init, shape: tuple[int, ...], names: tuple) -> nnx.Param:
  # eager_sharding=False: the mesh is applied by jit out_shardings, not at construction.
  return nnx.Param(init(rngs.params(), shape), out_sharding=names, eager_sharding=False)


def fan_in_init(in_axes: tuple[int, ...], scale: float = 1.0) -> Init:
  return nnx.initializers.variance_scaling(scale, 'fan_in', 'truncated_normal', in_axis=in_axes,
                                           out_axis=-1)


class RMSNorm(nnx.Module):

  def __init__(self, dim: int, *, rngs: nnx.Rngs):
    self.scale = param(rngs, nnx.initializers.ones, (dim,), (None,))

  def __call__(self, x_BxLxD: jax.Array) -> jax.Array:
    x = x_BxLxD.astype(jnp.float32)
    x = x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + 1e-6)
    return (x * self.scale[...]).astype(x_BxLxD.dtype)


def rope(x_BxLxHxK: jax.Array, max_wavelength: float = 10_000.0) -> jax.Array:
  """Rotary embedding on the two halves of each head, in float32."""
  _, L, _, K = x_BxLxHxK.shape
  freq_K2 = max_wavelength ** (-jnp.arange(K // 2, dtype=jnp.float32) / (K // 2))
  angle_LxK2 = jnp.arange(L, dtype=jnp.float32)[:, None] * freq_K2[None, :]
  sin, cos = jnp.sin(angle_LxK2)[None, :, None, :], jnp.cos(angle_LxK2)[None, :, None, :]
  x1, x2 = jnp.split(x_BxLxHxK.astype(jnp.float32), 2, axis=-1)
  out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  return out.astype(x_BxLxHxK.dtype)


class CausalAttention(nnx.Module):

  def __init__(self, cfg: config_dict.ConfigDict, *, dtype, rngs: nnx.Rngs):
    D, H = cfg.d_model, cfg.n_head
    K = D // H
    self.dtype = dtype
    qkv_init = fan_in_init((0,))
    self.wq = param(rngs, qkv_init, (D, H, K), ('embed', 'heads', 'kv'))
    self.wk = param(rngs, qkv_init, (D, H, K), ('embed', 'heads', 'kv'))
    self.wv = param(rngs, qkv_init, (D, H, K), ('embed', 'heads', 'kv'))
    out_init = fan_in_init((0, 1), 1.0 / (2 * cfg.n_layer))  # residual branches add up over depth
    self.wo = param(rngs, out_init, (H, K, D), ('heads', 'kv', 'embed'))

  def __call__(self, x_BxLxD: jax.Array) -> jax.Array:
    w = lambda p: p[...].astype(self.dtype)
    q_BxLxHxK = rope(jnp.einsum('bld,dhk->blhk', x_BxLxD, w(self.wq)))
    k_BxLxHxK = rope(jnp.einsum('bld,dhk->blhk', x_BxLxD, w(self.wk)))
    v_BxLxHxK = jnp.einsum('bld,dhk->blhk', x_BxLxD, w(self.wv))
    K = q_BxLxHxK.shape[-1]
    logits_BxHxLxL = jnp.einsum('bqhk,bshk->bhqs', q_BxLxHxK, k_BxLxHxK,
                                preferred_element_type=jnp.float32) / jnp.sqrt(K)
    L = x_BxLxD.shape[1]
    causal_LxL = jnp.tril(jnp.ones((L, L), dtype=bool))
    logits_BxHxLxL = jnp.where(causal_LxL, logits_BxHxLxL, jnp.finfo(jnp.float32).min)
    probs_BxHxLxL = jax.nn.softmax(logits_BxHxLxL, axis=-1).astype(self.dtype)
    out_BxLxHxK = jnp.einsum('bhqs,bshk->bqhk', probs_BxHxLxL, v_BxLxHxK)
    return jnp.einsum('blhk,hkd->bld', out_BxLxHxK, w(self.wo))


class Mlp(nnx.Module):

  def __init__(self, cfg: config_dict.ConfigDict, *, dtype, rngs: nnx.Rngs):
    D, F = cfg.d_model, cfg.d_ff
    self.dtype, self.kind = dtype, cfg.mlp
    self.w_in = param(rngs, fan_in_init((0,)), (D, F), ('embed', 'mlp'))
    if cfg.mlp == 'swiglu':
      self.w_gate = param(rngs, fan_in_init((0,)), (D, F), ('embed', 'mlp'))
    out_init = fan_in_init((0,), 1.0 / (2 * cfg.n_layer))
    self.w_out = param(rngs, out_init, (F, D), ('mlp', 'embed'))

  def __call__(self, x_BxLxD: jax.Array) -> jax.Array:
    h_BxLxF = x_BxLxD @ self.w_in[...].astype(self.dtype)
    if self.kind == 'swiglu':
      h_BxLxF = h_BxLxF * jax.nn.silu(x_BxLxD @ self.w_gate[...].astype(self.dtype))
    else:
      h_BxLxF = jax.nn.gelu(h_BxLxF)
    return h_BxLxF @ self.w_out[...].astype(self.dtype)


class Block(nnx.Module):

  def __init__(self, cfg: config_dict.ConfigDict, *, dtype, rngs: nnx.Rngs):
    self.attn_norm = RMSNorm(cfg.d_model, rngs=rngs)
    self.attn = CausalAttention(cfg, dtype=dtype, rngs=rngs)
    self.mlp_norm = RMSNorm(cfg.d_model, rngs=rngs)
    self.mlp = Mlp(cfg, dtype=dtype, rngs=rngs)

  def __call__(self, x_BxLxD: jax.Array) -> jax.Array:
    x_BxLxD = x_BxLxD + self.attn(self.attn_norm(x_BxLxD))
    return x_BxLxD + self.mlp(self.mlp_norm(x_BxLxD))


class Transformer(nnx.Module):
  """tokens_BxL (int) -> logits_BxLxV (float32)."""

  def __init__(self, cfg: config_dict.ConfigDict, *, dtype=jnp.float32, rngs: nnx.Rngs):
    V, D = cfg.vocab_size, cfg.d_model
    self.dtype, self.tied = dtype, cfg.tied_embeddings
    vocab_init = nnx.initializers.normal(0.02)  # small logits at init: loss starts near ln(V)
    self.embed = param(rngs, vocab_init, (V, D), ('vocab', 'embed'))
    self.blocks = nnx.List([Block(cfg, dtype=dtype, rngs=rngs) for _ in range(cfg.n_layer)])
    self.out_norm = RMSNorm(D, rngs=rngs)
    if not cfg.tied_embeddings:
      self.unembed = param(rngs, vocab_init, (D, V), ('embed', 'vocab'))

  def __call__(self, tokens_BxL: jax.Array) -> jax.Array:
    x_BxLxD = self.embed[...].astype(self.dtype)[tokens_BxL]
    for block in self.blocks:
      x_BxLxD = block(x_BxLxD)
    x_BxLxD = self.out_norm(x_BxLxD)
    w_DxV = self.embed[...].T if self.tied else self.unembed[...]
    return jnp.einsum('bld,dv->blv', x_BxLxD, w_DxV.astype(self.dtype),
                      preferred_element_type=jnp.float32)
