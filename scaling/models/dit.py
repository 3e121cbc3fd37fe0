"""Diffusion Transformer (Peebles & Xie 2023): patch tokens, adaLN-Zero blocks, linear unpatchify.

Parameters are float32 and carry logical axis names (scaling.sharding maps them to the mesh);
the forward pass computes in `dtype` and keeps layer norms and the attention softmax in float32.
Every matmul is scaling/models/matmul.py's: its operands in `dtype`, its sums in float32, forward
and backward.
The adaLN modulations and the output projection start at zero, so at init every block is the
identity and the network outputs zeros.
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from ml_collections import config_dict

from scaling import precision
from scaling.errors import ConfigError
from scaling.models import initialization, layer_stack, matmul
from scaling.models.attention import attention
from scaling.models.dense_gelu import dense_gelu
from scaling.models.transformer import param

def check_shape(cfg: config_dict.ConfigDict) -> None:
  if cfg.image_size % cfg.patch:
    raise ConfigError(f'model.patch: {cfg.patch} does not divide model.image_size='
                      f'{cfg.image_size}; pick a patch size among its divisors')
  if cfg.d_model % cfg.n_head or cfg.d_model % 4:
    raise ConfigError(f'model.d_model: {cfg.d_model} must be a multiple of 4 (2-D sin-cos '
                      f'positions) and of model.n_head={cfg.n_head}')


def sincos_1d(pos_N: np.ndarray, dim: int) -> np.ndarray:
  omega_F = 1.0 / 10_000 ** (np.arange(dim // 2) / (dim // 2))
  angle_NxF = pos_N[:, None] * omega_F[None, :]
  return np.concatenate([np.sin(angle_NxF), np.cos(angle_NxF)], axis=1)


def sincos_2d(grid: int, dim: int) -> np.ndarray:
  """Fixed (grid*grid, dim) table: half the channels encode the row, half the column."""
  row_GxG, col_GxG = np.meshgrid(np.arange(grid), np.arange(grid), indexing='ij')
  row_T, col_T = row_GxG.reshape(-1), col_GxG.reshape(-1)
  return np.concatenate([sincos_1d(row_T, dim // 2), sincos_1d(col_T, dim // 2)], axis=1)


def timestep_features(t_B: jax.Array, dim: int, max_period: float = 10_000.0) -> jax.Array:
  # DiT embeds the integer DDPM step; t in [0, 1] is scaled to the same 0..1000 range.
  freq_F = jnp.exp(-jnp.log(max_period) * jnp.arange(dim // 2, dtype=jnp.float32) / (dim // 2))
  angle_BxF = 1000.0 * t_B.astype(jnp.float32)[:, None] * freq_F[None, :]
  return jnp.concatenate([jnp.cos(angle_BxF), jnp.sin(angle_BxF)], axis=-1)


def layer_norm(x_BxTxD: jax.Array) -> jax.Array:
  x = x_BxTxD.astype(jnp.float32)
  x = (x - x.mean(-1, keepdims=True)) * jax.lax.rsqrt(x.var(-1, keepdims=True) + 1e-6)
  return x.astype(x_BxTxD.dtype)


def modulate(x_BxTxD: jax.Array, shift_BxD: jax.Array, scale_BxD: jax.Array) -> jax.Array:
  return x_BxTxD * (1 + scale_BxD[:, None, :]) + shift_BxD[:, None, :]


class Modulation(nnx.Module):
  """SiLU(c) -> n vectors of width D; zero-initialised (the "Zero" of adaLN-Zero)."""

  def __init__(self, d: int, n: int, w_rule: initialization.Rule, b_rule: initialization.Rule,
               *, dtype, rngs: nnx.Rngs):
    self.dtype = dtype
    self.w = param(rngs, w_rule, (d, n, d), ('embed', None, None))
    self.b = param(rngs, b_rule, (n, d), (None, None))

  def __call__(self, c_BxD: jax.Array) -> list[jax.Array]:
    out_BxNxD = matmul.einsum('bd,dne->bne', jax.nn.silu(c_BxD), self.w[...], self.dtype)
    out_BxNxD = out_BxNxD + self.b[...].astype(self.dtype)
    return [out_BxNxD[:, i] for i in range(out_BxNxD.shape[1])]


class Attention(nnx.Module):

  def __init__(self, cfg: config_dict.ConfigDict, *, dtype, rngs: nnx.Rngs):
    D, H = cfg.d_model, cfg.n_head
    K = D // H
    self.dtype = dtype
    self.scale = initialization.attention_scale(cfg, K)  # None: sp's 1/√K
    self.kernel = precision.attention_kernel(cfg.get('attention', 'auto'), jnp.dtype(dtype).name, K,
                                             causal=False, seq_len=(cfg.image_size // cfg.patch)**2)
    rules = initialization.dit_rules(cfg)
    self.w_qkv = param(rngs, rules['attn/w_qkv'], (D, 3, H, K), ('embed', None, 'heads', 'kv'))
    self.b_qkv = param(rngs, rules['attn/b_qkv'], (3, H, K), (None, 'heads', 'kv'))
    self.w_o = param(rngs, rules['attn/w_o'], (H, K, D), ('heads', 'kv', 'embed'))
    self.b_o = param(rngs, rules['attn/b_o'], (D,), ('embed',))

  def __call__(self, x_BxTxD: jax.Array) -> jax.Array:
    qkv_Bx3xTxHxK = matmul.einsum('btd,dihk->bithk', x_BxTxD, self.w_qkv[...], self.dtype)
    qkv_Bx3xTxHxK = qkv_Bx3xTxHxK + self.b_qkv[...].astype(self.dtype)[None, :, None]
    q_BxTxHxK, k_BxTxHxK, v_BxTxHxK = [qkv_Bx3xTxHxK[:, i] for i in range(3)]
    # Scores and softmax in float32 (XLA paths); cuDNN's fused kernel on a GPU in bf16.
    out_BxTxHxK = attention(q_BxTxHxK, k_BxTxHxK, v_BxTxHxK, self.scale, causal=False,
                            kernel=self.kernel)
    out_BxTxD = matmul.einsum('bthk,hkd->btd', out_BxTxHxK, self.w_o[...], self.dtype)
    return out_BxTxD + self.b_o[...].astype(self.dtype)


class Mlp(nnx.Module):

  def __init__(self, cfg: config_dict.ConfigDict, *, dtype, rngs: nnx.Rngs):
    d, f = cfg.d_model, cfg.mlp_ratio * cfg.d_model
    self.dtype = dtype
    rules = initialization.dit_rules(cfg)
    self.w_in = param(rngs, rules['mlp/w_in'], (d, f), ('embed', 'mlp'))
    self.b_in = param(rngs, rules['mlp/b_in'], (f,), ('mlp',))
    self.w_out = param(rngs, rules['mlp/w_out'], (f, d), ('mlp', 'embed'))
    self.b_out = param(rngs, rules['mlp/b_out'], (d,), ('embed',))

  def __call__(self, x_BxTxD: jax.Array) -> jax.Array:
    h_BxTxF = dense_gelu(x_BxTxD, self.w_in[...], self.b_in[...])
    out_BxTxD = matmul.einsum('btf,fd->btd', h_BxTxF, self.w_out[...], self.dtype)
    return out_BxTxD + self.b_out[...].astype(self.dtype)


class Block(nnx.Module):

  def __init__(self, cfg: config_dict.ConfigDict, *, dtype, rngs: nnx.Rngs):
    rules = initialization.dit_rules(cfg)
    self.modulation = Modulation(cfg.d_model, 6, rules['modulation/w'], rules['modulation/b'],
                                 dtype=dtype, rngs=rngs)
    self.attn = Attention(cfg, dtype=dtype, rngs=rngs)
    self.mlp = Mlp(cfg, dtype=dtype, rngs=rngs)

  def __call__(self, x_BxTxD: jax.Array, c_BxD: jax.Array) -> jax.Array:
    shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(c_BxD)
    x_BxTxD = x_BxTxD + gate1[:, None] * self.attn(modulate(layer_norm(x_BxTxD), shift1, scale1))
    return x_BxTxD + gate2[:, None] * self.mlp(modulate(layer_norm(x_BxTxD), shift2, scale2))


class Conditioning(nnx.Module):
  """c = MLP(timestep features) [+ class embedding]; index num_classes is the "null" class."""

  def __init__(self, cfg: config_dict.ConfigDict, *, dtype, rngs: nnx.Rngs):
    D, F = cfg.d_model, cfg.freq_dim
    self.dtype, self.freq_dim = dtype, cfg.freq_dim
    self.num_classes, self.label_dropout = cfg.num_classes, cfg.label_dropout
    rules = initialization.dit_rules(cfg)
    self.w_t1 = param(rngs, rules['cond/w_t1'], (F, D), (None, 'embed'))
    self.b_t1 = param(rngs, rules['cond/b_t1'], (D,), ('embed',))
    self.w_t2 = param(rngs, rules['cond/w_t2'], (D, D), ('embed', None))
    self.b_t2 = param(rngs, rules['cond/b_t2'], (D,), (None,))
    if cfg.num_classes:
      self.classes = param(rngs, rules['cond/classes'], (cfg.num_classes + 1, D), (None, 'embed'))

  def __call__(self, t_B: jax.Array, label_B: jax.Array | None, drop_key: jax.Array | None):
    h_BxD = timestep_features(t_B, self.freq_dim).astype(self.dtype)
    dense = lambda x, p: matmul.einsum('bf,fd->bd', x, p[...], self.dtype)
    h_BxD = jax.nn.silu(dense(h_BxD, self.w_t1) + self.b_t1[...].astype(self.dtype))
    c_BxD = dense(h_BxD, self.w_t2) + self.b_t2[...].astype(self.dtype)
    if not self.num_classes:
      return c_BxD
    if label_B is None:
      label_B = jnp.full(t_B.shape, self.num_classes, jnp.int32)
    if drop_key is not None:  # classifier-free guidance trains the null class on a fraction
      drop_B = jax.random.bernoulli(drop_key, self.label_dropout, label_B.shape)
      label_B = jnp.where(drop_B, self.num_classes, label_B)
    return c_BxD + self.classes[...][label_B].astype(self.dtype)  # cast after the gather


class DiT(nnx.Module):
  """(z_BxHxWxC, t_B in [0, 1], label_B or None) -> prediction_BxHxWxC (float32)."""

  def __init__(self, cfg: config_dict.ConfigDict, *, dtype=jnp.float32, rngs: nnx.Rngs):
    check_shape(cfg)
    D, P, C = cfg.d_model, cfg.patch, cfg.channels
    self.dtype, self.patch = dtype, P
    self.scan_layers, self.remat = cfg.get('scan_layers', False), cfg.get('remat', 'none')
    self.output_multiplier = initialization.output_multiplier(cfg)  # μP's base/width; None: sp
    rules = initialization.dit_rules(cfg)
    self.w_patch = param(rngs, rules['w_patch'], (P * P * C, D), (None, 'embed'))
    self.b_patch = param(rngs, rules['b_patch'], (D,), ('embed',))
    self.cond = Conditioning(cfg, dtype=dtype, rngs=rngs)
    self.blocks = layer_stack.make(lambda r: Block(cfg, dtype=dtype, rngs=r), cfg.n_layer, rngs,
                                   scan=self.scan_layers)
    self.final_modulation = Modulation(D, 2, rules['final_modulation/w'],
                                       rules['final_modulation/b'], dtype=dtype, rngs=rngs)
    self.w_out = param(rngs, rules['w_out'], (D, P * P * C), ('embed', None))
    self.b_out = param(rngs, rules['b_out'], (P * P * C,), (None,))

  def patchify(self, x_BxHxWxC: jax.Array) -> jax.Array:
    B, H, W, C = x_BxHxWxC.shape
    P = self.patch
    x = x_BxHxWxC.reshape(B, H // P, P, W // P, P, C).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(B, (H // P) * (W // P), P * P * C)

  def unpatchify(self, x_BxTxF: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    B, H, W, C = shape
    P = self.patch
    x = x_BxTxF.reshape(B, H // P, W // P, P, P, C).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(B, H, W, C)

  def __call__(self, z_BxHxWxC: jax.Array, t_B: jax.Array, label_B: jax.Array | None = None,
               *, drop_key: jax.Array | None = None) -> jax.Array:
    tokens_BxTxF = self.patchify(z_BxHxWxC.astype(self.dtype))
    # A constant at trace time, so not a parameter.
    pos_TxD = sincos_2d(z_BxHxWxC.shape[1] // self.patch, self.w_patch.shape[1])
    x_BxTxD = matmul.einsum('btf,fd->btd', tokens_BxTxF, self.w_patch[...], self.dtype)
    x_BxTxD = x_BxTxD + self.b_patch[...].astype(self.dtype) + pos_TxD.astype(self.dtype)
    c_BxD = self.cond(t_B, label_B, drop_key)
    x_BxTxD = layer_stack.apply(self.blocks, x_BxTxD, c_BxD, scan=self.scan_layers,
                                   remat=self.remat)
    shift_BxD, scale_BxD = self.final_modulation(c_BxD)
    x_BxTxD = modulate(layer_norm(x_BxTxD), shift_BxD, scale_BxD)
    out_BxTxF = matmul.einsum('btd,df->btf', x_BxTxD, self.w_out[...], self.dtype, jnp.float32)
    if self.output_multiplier is not None:
      out_BxTxF = out_BxTxF * self.output_multiplier
    out_BxTxF = out_BxTxF + self.b_out[...]
    return self.unpatchify(out_BxTxF, z_BxHxWxC.shape)
