"""Autoregressive language modelling over bytes: the transformer, next-token loss and bits/byte."""

import math

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from ml_collections import config_dict

from scaling import flops
from scaling.data import Data, text, tfds_text
from scaling.errors import ConfigError
from scaling.models.transformer import Transformer

MLPS = ('gelu', 'swiglu')
SHAPE_FIELDS = ('n_layer', 'd_model', 'n_head', 'd_ff', 'vocab_size', 'seq_len')


def check_config(c: config_dict.ConfigDict) -> None:
  m = c.model
  if m.d_model % m.n_head:
    raise ConfigError(f'model.n_head: {m.n_head} does not divide model.d_model={m.d_model}; '
                      'pick n_head among the divisors of d_model')
  if (m.d_model // m.n_head) % 2:
    raise ConfigError(f'model.n_head: head dim d_model/n_head = {m.d_model // m.n_head} must be '
                      'even for RoPE')
  if m.mlp not in MLPS:
    raise ConfigError(f'model.mlp: unknown {m.mlp!r}; use one of {", ".join(MLPS)}')
  if m.vocab_size < text.VOCAB_SIZE:
    raise ConfigError(f'model.vocab_size: {m.vocab_size} is below the {text.VOCAB_SIZE} byte '
                      'tokens of the text data')


def make_model(c: config_dict.ConfigDict, rngs: nnx.Rngs) -> Transformer:
  return Transformer(c.model, dtype=jnp.dtype(c.dtype), rngs=rngs)


def make_data(c: config_dict.ConfigDict, process_index: int, process_count: int) -> Data:
  kind, _, arg = c.dataset.partition(':')
  shared = dict(seq_len=c.model.seq_len, batch_size=c.batch_size, n_eval_batches=c.eval_batches,
                seed=c.seed, process_index=process_index, process_count=process_count)
  if kind == 'stdlib':
    train, held_out, fingerprint = text.read_folder(text.stdlib_root(), suffixes=('.py',))
    return text.ByteWindows('stdlib', fingerprint, train, held_out, **shared)
  if kind == 'textdir':
    train, held_out, fingerprint = text.read_folder(arg)
    return text.ByteWindows(c.dataset, fingerprint, train, held_out, **shared)
  if kind == 'tfds':
    return tfds_text.TfdsText(arg, c.data_dir or None, **shared)
  raise ConfigError(f'dataset: {c.dataset!r} is not a text dataset for the lm task; use stdlib, '
                    'textdir:/path/to/folder or tfds:NAME (e.g. tfds:lm1b)')


def loss_fn(model: Transformer, batch: dict, rng: jax.Array) -> tuple[jax.Array, dict]:
  del rng  # no dropout: the loss is a pure function of the parameters and the batch
  logits_BxLxV = model(batch['inputs'])
  loss = optax.softmax_cross_entropy_with_integer_labels(logits_BxLxV, batch['targets']).mean()
  return loss, {}


def eval_fn(model: Transformer, batch: dict) -> dict[str, jax.Array]:
  loss, _ = loss_fn(model, batch, jax.random.key(0))
  return {'eval_loss': loss, 'eval_bits_per_byte': loss / math.log(2)}  # one token is one byte


def describe(c: config_dict.ConfigDict) -> dict:
  counts = flops.lm_param_counts(c.model)
  return {
      'model': {k: c.model[k] for k in SHAPE_FIELDS} | {'mlp': c.model.mlp,
                                                       'tied_embeddings': c.model.tied_embeddings},
      'n_params': counts['total'],
      'n_params_nonembedding': counts['nonembedding'],
      'flops_per_token': flops.lm_train_flops_per_token(c.model),
      'tokens_per_step': c.batch_size * c.model.seq_len,
  }


def finish(model: Transformer, c: config_dict.ConfigDict, workdir: str) -> None:
  del model, c, workdir  # text samples come from `python -m scaling.sample`
