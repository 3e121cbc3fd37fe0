import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from configs import lm
from scaling import flops
from scaling.models.transformer import Transformer, rope, rope_table


def model_cfg(**overrides):
  c = lm.get_config('size=micro')
  c.seq_len = 32
  for k, v in overrides.items():
    c.model[k] = v
  return c.model


@pytest.mark.parametrize('mlp', ['gelu', 'swiglu'])
def test_logits_at_t_ignore_tokens_after_t(mlp):
  model = Transformer(model_cfg(mlp=mlp), rngs=nnx.Rngs(0))
  tokens = jax.random.randint(jax.random.key(1), (2, 32), 0, 256)
  changed = tokens.at[:, 20:].set((tokens[:, 20:] + 7) % 256)
  a, b = model(tokens), model(changed)
  np.testing.assert_allclose(a[:, :20], b[:, :20], atol=1e-5)
  assert np.abs(a[:, 20:] - b[:, 20:]).max() > 1e-3


@pytest.mark.parametrize('tied', [False, True])
def test_initial_loss_is_about_log_vocab(tied):
  model = Transformer(model_cfg(tied_embeddings=tied), rngs=nnx.Rngs(0))
  tokens = jax.random.randint(jax.random.key(1), (4, 33), 0, 256)
  logits = model(tokens[:, :-1])
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:]).mean()
  assert abs(float(loss) - math.log(256)) < 0.05 * math.log(256)


def test_overfits_one_batch():
  model = Transformer(model_cfg(), rngs=nnx.Rngs(0))
  graphdef, params = nnx.split(model)
  params = nnx.to_pure_dict(params)
  tokens = jax.random.randint(jax.random.key(1), (4, 33), 0, 256)
  tx = optax.adam(3e-3)
  opt = tx.init(params)

  @jax.jit
  def step(params, opt):
    def loss_fn(p):
      logits = nnx.merge(graphdef, p)(tokens[:, :-1])
      return optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:]).mean()
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt = tx.update(grads, opt)
    return optax.apply_updates(params, updates), opt, loss

  for _ in range(300):
    params, opt, loss = step(params, opt)
  assert float(loss) < 0.1


@pytest.mark.parametrize('mlp,tied', [('gelu', False), ('swiglu', True)])
def test_param_counts_match_the_model(mlp, tied):
  cfg = model_cfg(mlp=mlp, tied_embeddings=tied)
  params = nnx.to_pure_dict(nnx.state(Transformer(cfg, rngs=nnx.Rngs(0))))
  sizes = {jax.tree_util.keystr(p): x.size for p, x in jax.tree_util.tree_flatten_with_path(params)[0]}
  embedding = sum(v for k, v in sizes.items() if 'embed' in k)
  counts = flops.lm_param_counts(cfg)
  assert counts['total'] == sum(sizes.values())
  assert counts['nonembedding'] == sum(sizes.values()) - embedding


def test_bfloat16_compute_keeps_float32_params_and_logits():
  model = Transformer(model_cfg(), dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
  logits = model(jnp.zeros((1, 8), jnp.int32))
  assert logits.dtype == jnp.float32
  assert model.embed[...].dtype == jnp.float32


def test_rope_rotates_pairs_by_position_angle():
  x = jnp.ones((1, 3, 1, 4))  # head dim 4: frequencies 1 and 1e-2
  out = rope(x, rope_table(3, 4))
  t = np.arange(3.0)
  for j, freq in enumerate([1.0, 1e-2]):
    np.testing.assert_allclose(out[0, :, 0, j], np.cos(t * freq) - np.sin(t * freq), atol=1e-6)
    np.testing.assert_allclose(out[0, :, 0, j + 2], np.cos(t * freq) + np.sin(t * freq), atol=1e-6)
