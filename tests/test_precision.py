"""Platform defaults (scaling/precision.py) and the kernels they pick, against the plain path.

Every performance lever kept in the model has a test here that its numerics match the plain
computation it replaced: the training loss over 10 steps within 1e-5 relative in float32. The
bfloat16 matmuls (scaling/models/matmul.py) are checked against float32 on the same bf16-rounded
inputs within BF16_RTOL.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from benchmarks import lowering
from configs import dit, lm
from scaling import checks, precision, sharding, steps
from scaling.data import synthetic
from scaling.errors import ConfigError
from scaling.models import attention, dense_gelu, matmul
from scaling.tasks import TASKS

# bfloat16 keeps 8 significant bits: one rounding is off by up to 2^-9 relative. A bf16 product
# summed in float32 rounds its operands (here already bf16), its output and, in the backward,
# its cotangent once each; 2^-7 relative (Frobenius norm) allows about four roundings.
BF16_RTOL = 2**-7


@pytest.mark.parametrize('dtype, platform, expected', [
    ('auto', 'cpu', 'float32'), ('auto', 'gpu', 'bfloat16'), ('auto', 'tpu', 'bfloat16'),
    ('float32', 'gpu', 'float32'), ('bfloat16', 'cpu', 'bfloat16')])
def test_auto_dtype_is_bfloat16_on_accelerators_and_float32_on_cpu(dtype, platform, expected):
  assert precision.compute_dtype(dtype, platform) == expected


@pytest.mark.parametrize('attention, dtype, head_dim, causal, seq_len, platform, expected', [
    ('auto', 'auto', 64, True, 256, 'gpu', 'cudnn'),
    ('auto', 'auto', 128, False, 256, 'gpu', 'cudnn'),
    ('auto', 'auto', 160, True, 256, 'gpu', 'xla'),  # over cuDNN's fused head dim
    ('auto', 'auto', 36, True, 256, 'gpu', 'xla'),  # not a multiple of 8
    ('auto', 'float32', 64, True, 256, 'gpu', 'xla'),
    ('auto', 'auto', 64, True, 128, 'cpu', 'blocked'),
    ('auto', 'bfloat16', 64, True, 2048, 'cpu', 'blocked'),
    ('auto', 'auto', 64, True, 127, 'cpu', 'xla'),  # too short to gain from the blocks
    ('auto', 'auto', 64, False, 256, 'cpu', 'xla'),  # the blocks are causal
    ('auto', 'auto', 64, True, 256, 'tpu', 'xla'), ('xla', 'bfloat16', 64, True, 256, 'gpu', 'xla'),
    ('xla', 'float32', 64, True, 256, 'cpu', 'xla'),
    ('blocked', 'float32', 64, True, 32, 'cpu', 'blocked')])
def test_auto_attention_picks_each_kernel_only_where_it_is_defined(attention, dtype, head_dim,
                                                                   causal, seq_len, platform,
                                                                   expected):
  assert precision.attention_kernel(attention, dtype, head_dim, causal, seq_len,
                                    platform) == expected


def test_explicit_cudnn_is_refused_where_it_cannot_run():
  c = lm.get_config('size=nano')
  c.attention = 'cudnn'
  with pytest.raises(ConfigError, match=r'^attention: cudnn needs a GPU, and this host is cpu;'):
    checks.check_platform(c, 'cpu')
  c.dtype = 'float32'
  with pytest.raises(ConfigError, match=r'^attention: cudnn needs bfloat16, and dtype is float32;'):
    checks.check_platform(c, 'gpu')
  c.dtype = 'auto'
  checks.check_platform(c, 'gpu')
  c.attention = 'flash'
  with pytest.raises(ConfigError, match=r"^attention: unknown 'flash'; use one of auto, xla, cudnn"):
    checks.check_fields(c)
  c = dit.get_config('size=tiny')
  c.attention = 'blocked'
  with pytest.raises(ConfigError, match=r'^attention: blocked is causal attention, and the '
                     r'diffusion task attends both ways; use auto or xla$'):
    checks.check_fields(c)


@pytest.mark.parametrize('config, seq_len, expected', [
    (lm.get_config, 128, 'blocked'), (lm.get_config, 64, 'xla'), (dit.get_config, None, 'xla')])
def test_resolve_records_the_platforms_choice(config, seq_len, expected):
  c = config('size=nano' if config is lm.get_config else 'size=tiny')
  if seq_len:
    c.seq_len = seq_len
  precision.resolve(c)
  assert (c.dtype, c.attention, c.model.attention) == ('float32', expected, expected)


CALLS = []


def plain_attention(q_BxTxHxK, k_BxSxHxK, v_BxSxHxK, *, scale=None, is_causal=False,
                    implementation=None):
  """The einsum-softmax-einsum the models computed before jax.nn.dot_product_attention."""
  del implementation
  CALLS.append(q_BxTxHxK.shape)
  K, T, S = q_BxTxHxK.shape[-1], q_BxTxHxK.shape[1], k_BxSxHxK.shape[1]
  logits_BxHxTxS = jnp.einsum('bqhk,bshk->bhqs', q_BxTxHxK, k_BxSxHxK,
                              preferred_element_type=jnp.float32)
  logits_BxHxTxS = logits_BxHxTxS / np.sqrt(K) if scale is None else logits_BxHxTxS * scale
  if is_causal:
    logits_BxHxTxS = jnp.where(jnp.tril(jnp.ones((T, S), bool)), logits_BxHxTxS,
                               jnp.finfo(jnp.float32).min)
  probs_BxHxTxS = jax.nn.softmax(logits_BxHxTxS, axis=-1).astype(v_BxSxHxK.dtype)
  return jnp.einsum('bhqs,bshk->bqhk', probs_BxHxTxS, v_BxSxHxK)


def ten_losses(c, params=None) -> list[float]:
  """Train losses of 10 steps on fixed random batches, from `params` if given (else c.seed's)."""
  mesh = sharding.make_mesh(c.mesh)
  fns = steps.build(c, TASKS[c.task], mesh)
  state, rng, losses = fns.init(), np.random.default_rng(0), []
  if params is not None:  # Adam's state at init does not depend on the parameters
    state['params'] = jax.device_put(params, fns.shardings['params'])
  for step in range(10):
    state, metrics = fns.train_step(state, sharding.global_batch(synthetic.batch(c, rng), mesh),
                                    step)
    losses.append(float(metrics['train_loss']))
  return losses


# The LM's causal attention under mup's scale, the DiT's full attention under sp's 1/√K.
@pytest.mark.parametrize('task, parameterization', [('lm', 'mup'), ('diffusion', 'sp')])
def test_fused_attention_matches_the_plain_path_over_ten_steps(task, parameterization,
                                                               monkeypatch):
  c = lm.get_config('size=nano') if task == 'lm' else dit.get_config('size=tiny')
  c.update(dict(batch_size=8, steps=10, warmup_steps=2, lr=3e-3, parameterization=parameterization,
                attention='xla'))  # the LM's CPU default is the blocked kernel, tested below
  if task == 'lm':
    c.seq_len = 32
  c.base_width = c.model.d_model // 2  # mup away from its base width, where its scale differs
  fused = ten_losses(c)
  monkeypatch.setattr(jax.nn, 'dot_product_attention', plain_attention)
  CALLS.clear()
  plain = ten_losses(c)
  assert len(CALLS) >= c.model.n_layer  # the models traced the plain path
  assert len(set(fused)) == 10  # the parameters moved at every step
  np.testing.assert_allclose(fused, plain, rtol=1e-5)


# Lengths that the blocks divide, and ones they do not (the last block shorter, or fewer blocks
# than asked for when L < n_blocks); bfloat16 inputs keep float32 scores and softmax.
@pytest.mark.parametrize('L, n_blocks, dtype', [(32, 4, 'float32'), (30, 4, 'float32'),
                                                (7, 3, 'float32'), (3, 4, 'float32'),
                                                (32, 1, 'float32'), (32, 4, 'bfloat16')])
def test_blocked_causal_attention_is_the_causal_softmax(L, n_blocks, dtype):
  kq, kk, kv, kg = jax.random.split(jax.random.key(1), 4)
  q, k, v = (jax.random.normal(key, (2, L, 3, 8), dtype) for key in (kq, kk, kv))
  g = jax.random.normal(kg, (2, L, 3, 8))
  blocked = lambda q, k, v: attention.softmax_attention(q, k, v, 0.3, causal=True,
                                                        n_blocks=n_blocks)
  plain = lambda q, k, v: plain_attention(q, k, v, scale=0.3, is_causal=True)
  tol = dict(rtol=1e-5, atol=1e-6) if dtype == 'float32' else dict(rtol=1e-2, atol=1e-2)
  np.testing.assert_allclose(blocked(q, k, v).astype(np.float32),
                             plain(q, k, v).astype(np.float32), **tol)
  grads = [jax.grad(lambda *a, f=f: jnp.sum(f(*a).astype(jnp.float32) * g), argnums=(0, 1, 2))(
      q, k, v) for f in (blocked, plain)]
  for got, want in zip(*grads):
    np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), **tol)


def test_blocked_causal_attention_skips_three_eighths_of_the_scores():
  """XLA's count of the forward and backward FLOPs: 4 blocks compute 10 of 16 score tiles (the
  per-query terms, which do not shrink, are under 1% at this length and head dim)."""
  q, k, v = (jnp.ones((1, 256, 1, 64)),) * 3
  def cost(n_blocks):
    f = lambda q, k, v: jnp.sum(attention.softmax_attention(q, k, v, causal=True, n_blocks=n_blocks))
    return jax.jit(jax.value_and_grad(f, argnums=(0, 1, 2))).lower(q, k, v).compile() \
        .cost_analysis()['flops']
  assert cost(4) / cost(1) == pytest.approx(10 / 16, rel=0.01)


def test_blocked_attention_trains_as_the_plain_path_over_ten_steps(monkeypatch):
  c = lm.get_config('size=nano')
  c.update(dict(batch_size=8, steps=10, warmup_steps=2, lr=3e-3, seq_len=30, attention='blocked'))
  blocked = ten_losses(c)  # 30 positions: blocks of 8, the last of 6
  c.attention = 'xla'
  monkeypatch.setattr(jax.nn, 'dot_product_attention', plain_attention)
  CALLS.clear()
  plain = ten_losses(c)
  assert len(CALLS) >= c.model.n_layer  # the models traced the plain path
  assert len(set(blocked)) == 10
  np.testing.assert_allclose(blocked, plain, rtol=1e-5)


def autodiff_dense_gelu(x_NxD, w_DxF, bias):
  """What dense_gelu computed before its hand-written backward: autodiff's own."""
  CALLS.append(x_NxD.shape)
  return jax.nn.gelu(dense_gelu._pre_activation(x_NxD, w_DxF, bias), approximate=True)


@pytest.mark.parametrize('with_bias', [False, True])
def test_dense_gelu_gradients_are_autodiffs(with_bias):
  kx, kw, kb, kg = jax.random.split(jax.random.key(0), 4)
  x, w = jax.random.normal(kx, (2, 6, 8)), jax.random.normal(kw, (8, 12)) / 3
  b = jax.random.normal(kb, (12,)) if with_bias else None
  g = jax.random.normal(kg, (2, 6, 12))
  loss = lambda *args: jnp.sum(dense_gelu.dense_gelu(*args) * g)
  args = (x, w) + ((b,) if with_bias else ())
  want = jax.grad(lambda *a: jnp.sum(autodiff_dense_gelu(a[0].reshape(-1, 8), a[1], a[2:])
                                     .reshape(2, 6, 12) * g), argnums=range(len(args)))(*args)
  got = jax.grad(loss, argnums=range(len(args)))(*args)
  np.testing.assert_allclose(dense_gelu.dense_gelu(*args).reshape(-1, 12),
                             autodiff_dense_gelu(x.reshape(-1, 8), w, args[2:]), rtol=1e-6)
  for a, b_ in zip(got, want):
    np.testing.assert_allclose(a, b_, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('task', ['lm', 'diffusion'])
def test_hand_written_mlp_backward_trains_as_autodiff_over_ten_steps(task, monkeypatch):
  c = lm.get_config('size=nano') if task == 'lm' else dit.get_config('size=tiny')
  c.update(dict(batch_size=8, steps=10, warmup_steps=2, lr=3e-3))
  if task == 'lm':
    c.seq_len = 32
  fast = ten_losses(c)
  monkeypatch.setattr(dense_gelu, '_dense_gelu', autodiff_dense_gelu)
  CALLS.clear()
  plain = ten_losses(c)
  assert len(CALLS) >= c.model.n_layer  # the models traced the autodiff path
  assert len(set(fast)) == 10  # the parameters moved at every step
  np.testing.assert_allclose(fast, plain, rtol=1e-5)


def bf16_rounded(key, shape, scale: float = 1.0) -> jax.Array:
  """float32 values that bfloat16 holds exactly, so that both dtypes start from the same inputs."""
  return (jax.random.normal(key, shape) * scale).astype(jnp.bfloat16).astype(jnp.float32)


def relative_error(got, want) -> float:
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  return float(np.linalg.norm(got - want) / np.linalg.norm(want))


# A projection and its output matmul, the LM's logits and the attention scores (float32 out),
# PV, and a DiT modulation (summed over one axis only).
EINSUMS = [('bld,dhk->blhk', (2, 16, 32), (32, 4, 8), None),
           ('blhk,hkd->bld', (2, 16, 4, 8), (4, 8, 32), None),
           ('bld,dv->blv', (2, 16, 32), (32, 64), jnp.float32),
           ('bqhk,bshk->bhqs', (2, 16, 4, 8), (2, 12, 4, 8), jnp.float32),
           ('bhqs,bshk->bqhk', (2, 4, 16, 12), (2, 12, 4, 8), None),
           ('bd,dne->bne', (4, 32), (32, 3, 32), None)]


@pytest.mark.parametrize('spec, a_shape, b_shape, out_dtype', EINSUMS)
def test_bf16_einsum_and_its_gradients_are_float32s_within_bf16_rounding(spec, a_shape, b_shape,
                                                                         out_dtype):
  """The activation in bf16, the weight float32 (cast inside): values and both gradients against
  float32's on the same inputs; the weight's gradient comes back float32, unrounded."""
  ka, kb, kg = jax.random.split(jax.random.key(0), 3)
  a, b = bf16_rounded(ka, a_shape), bf16_rounded(kb, b_shape, 0.2)
  g = jax.random.normal(kg, jax.eval_shape(lambda: jnp.einsum(spec, a, b)).shape)
  bf16 = lambda a, b: matmul.einsum(spec, a, b, jnp.bfloat16, out_dtype)
  out = bf16(a.astype(jnp.bfloat16), b)
  assert out.dtype == (out_dtype or jnp.bfloat16)
  assert relative_error(out.astype(jnp.float32), jnp.einsum(spec, a, b)) < BF16_RTOL
  got = jax.grad(lambda *x: jnp.sum(bf16(*x).astype(jnp.float32) * g), (0, 1))(
      a.astype(jnp.bfloat16), b)
  want = jax.grad(lambda *x: jnp.sum(jnp.einsum(spec, *x) * g), (0, 1))(a, b)
  assert (got[0].dtype, got[1].dtype) == (jnp.bfloat16, jnp.float32)
  for got_x, want_x in zip(got, want):
    assert relative_error(got_x.astype(jnp.float32), want_x) < BF16_RTOL


@pytest.mark.parametrize('spec, a_shape, b_shape, out_dtype', EINSUMS[:4])
def test_float32_einsum_is_jnp_einsum_bit_for_bit(spec, a_shape, b_shape, out_dtype):
  del out_dtype  # float32 in, float32 out
  ka, kb = jax.random.split(jax.random.key(1))
  a, b = jax.random.normal(ka, a_shape), jax.random.normal(kb, b_shape)
  f32 = lambda a, b: jnp.sum(jnp.sin(matmul.einsum(spec, a, b, jnp.float32)))
  plain = lambda a, b: jnp.sum(jnp.sin(jnp.einsum(spec, a, b)))
  assert str(jax.make_jaxpr(jax.grad(f32, (0, 1)))(a, b)) == \
      str(jax.make_jaxpr(jax.grad(plain, (0, 1)))(a, b))


@pytest.mark.parametrize('spec, a_shape, b_shape, out_dtype', EINSUMS)
def test_bf16_einsum_backward_has_no_float32_matmul_on_a_gpu(spec, a_shape, b_shape, out_dtype):
  """Autodiff would transpose a bf16 product with a float32 result into products of the float32
  cotangent, which XLA lowers as float32 x float32 (TF32 on a GPU); the custom VJP casts the
  cotangent to bf16 first. (On a CPU, XLA:CPU's exceptions are float32: matmul._product.)"""
  a, b = jnp.ones(a_shape, jnp.bfloat16), jnp.ones(b_shape)
  step = jax.value_and_grad(lambda a, b: jnp.sum(matmul.einsum(spec, a, b, jnp.bfloat16,
                                                               out_dtype).astype(jnp.float32)),
                            (0, 1))
  text = jax.jit(step).trace(a, b).lower(lowering_platforms=('cuda',)).as_text()
  dots = lowering.dots_by_dtypes(text)
  assert dots == {'bf16 x bf16 -> f32': 3}, dots  # the forward and both gradients


def test_bf16_logits_backward_matches_float32_within_bf16_rounding():
  """The LM's loss through float32 logits of a bf16 matmul: the loss is float32's to float32
  rounding, and the gradients of the final hidden state and of the unembedding, whose float32
  cotangent the backward casts to bf16, within BF16_RTOL of float32's."""
  kx, kw, kt = jax.random.split(jax.random.key(2), 3)
  x, w = bf16_rounded(kx, (4, 32, 64)), bf16_rounded(kw, (64, 256), 0.05)
  targets = jax.random.randint(kt, (4, 32), 0, 256)
  loss = lambda x, w, dtype: optax.softmax_cross_entropy_with_integer_labels(
      matmul.einsum('bld,dv->blv', x, w, dtype, jnp.float32), targets).mean()
  bf16 = jax.value_and_grad(loss, (0, 1))(x.astype(jnp.bfloat16), w, jnp.bfloat16)
  f32 = jax.value_and_grad(loss, (0, 1))(x, w, jnp.float32)
  assert float(bf16[0]) == pytest.approx(float(f32[0]), rel=1e-6)
  for got, want in zip(bf16[1], f32[1]):
    assert relative_error(got.astype(jnp.float32), want) < BF16_RTOL


@pytest.mark.parametrize('with_bias', [False, True])
def test_bf16_dense_gelu_matches_float32_within_bf16_rounding(with_bias):
  kx, kw, kb, kg = jax.random.split(jax.random.key(3), 4)
  x, w = bf16_rounded(kx, (2, 6, 8)), bf16_rounded(kw, (8, 12), 0.3)
  args = (x, w) + ((bf16_rounded(kb, (12,)),) if with_bias else ())
  g = jax.random.normal(kg, (2, 6, 12))
  loss = lambda *a: jnp.sum(dense_gelu.dense_gelu(*a).astype(jnp.float32) * g)
  got = jax.grad(loss, range(len(args)))(x.astype(jnp.bfloat16), *args[1:])
  want = jax.grad(loss, range(len(args)))(*args)
  for got_x, want_x in zip(got, want):
    assert relative_error(got_x.astype(jnp.float32), want_x) < BF16_RTOL


# Every kernel's products in bf16, run by XLA:CPU (which fails at run time on a bf16 product it
# cannot run: matmul._product): the causal blocks (30 positions, the last block shorter) with
# SwiGLU, tied embeddings and mup; XLA's causal attention under scan and remat; the DiT.
@pytest.mark.parametrize('task, attention_kernel, model', [
    ('lm', 'blocked', dict(mlp='swiglu', tied_embeddings=True)),
    ('lm', 'xla', dict(scan_layers=True, remat='dots')),
    ('diffusion', 'xla', dict(remat='dots'))])
def test_bf16_trains_as_float32_over_ten_steps(task, attention_kernel, model):
  c = lm.get_config('size=nano') if task == 'lm' else dit.get_config('size=tiny')
  c.update(dict(batch_size=8, steps=10, warmup_steps=2, lr=3e-3, attention=attention_kernel))
  c.model.update(model)
  if task == 'lm':
    c.update(dict(seq_len=30, parameterization='mup', base_width=16))
  f32 = ten_losses(c)
  c.dtype = 'bfloat16'
  np.testing.assert_allclose(ten_losses(c), f32, rtol=BF16_RTOL)
