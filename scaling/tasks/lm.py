"""Autoregressive language modelling: the transformer, next-token loss and bits per byte.

Text is bytes (stdlib, textdir:, tfds:) or the tokens of a prepared folder (tokens:DIR, any
tokenizer; see scaling.data.prepare). `corpus(c)` describes the data without loading it: its
tokenizer, whose vocabulary the model takes when model.vocab_size is left at the byte default
256, and its size, which sets the epochs a run plans (refused past max_epochs) and logs.
"""

import functools
import math

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from ml_collections import config_dict

from scaling import flops, precision, stderr
from scaling.data import Data, spec, text, tfds_text, tokens
from scaling.data import tokenizer as tokenizers
from scaling.errors import ConfigError
from scaling.models.transformer import Transformer

DATA = 'text'  # the family of datasets this task reads (scaling.data.spec)
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
  if c.get('max_epochs', 0.0) < 0:
    raise ConfigError(f'max_epochs: {c.max_epochs} must be 0 (the default cap) or more')
  data = corpus(c)
  vocab = data['tokenizer']['vocab_size']
  if model_config(c).vocab_size < vocab:
    raise ConfigError(f'model.vocab_size: {m.vocab_size} is below the {vocab} tokens of the '
                      f'{data["tokenizer"]["name"]} tokenizer of {c.dataset}; leave it at the default '
                      f'{text.VOCAB_SIZE} to take the tokenizer\'s, or set at least {vocab}')


def check_steps(c: config_dict.ConfigDict) -> None:
  """A run may not plan more than max_epochs passes over the train split (default 1 for tokens:)."""
  limit = c.get('max_epochs', 0.0) or (1.0 if spec.parse(c.dataset).kind == 'tokens' else 0.0)
  per_epoch = corpus(c)['tokens_per_epoch']
  if not limit or not per_epoch:
    return
  planned = c.steps * c.batch_size * c.model.seq_len
  if planned > limit * per_epoch:
    raise ConfigError(f'max_epochs: {c.steps} steps x {c.batch_size} x {c.model.seq_len} tokens = '
                      f'{planned:,} tokens is {planned / per_epoch:.3g} epochs of the {per_epoch:,} '
                      f'train tokens of {c.dataset}, over max_epochs={limit:g}; lower steps, or raise '
                      '--config.max_epochs to repeat data on purpose')


def tokenizer(c: config_dict.ConfigDict) -> tokenizers.Tokenizer:
  """The tokenizer the run's data was encoded with: a prepared folder's own, else bytes."""
  data = spec.parse(c.dataset, family=DATA)
  if data.kind == 'tokens':
    return tokens.load_tokenizer(data.arg, tokens.read_manifest(data.arg))
  return tokenizers.ByteTokenizer()


def _suffixes(c: config_dict.ConfigDict) -> tuple[str, ...] | None:
  return tuple(s for s in c.get('data_suffixes', '').split(',') if s) or None


def corpus(c: config_dict.ConfigDict) -> dict:
  """run.json's `corpus`: tokenizer, split sizes and tokens_per_epoch (None where unknown)."""
  return _corpus(spec.parse(c.dataset, family=DATA), _suffixes(c), c.model.seq_len)


@functools.lru_cache(maxsize=16)  # a sweep describes many runs of one corpus
def _corpus(data: spec.DatasetSpec, suffixes: tuple[str, ...] | None, seq_len: int) -> dict:
  kind, arg = data.kind, data.arg
  byte = {'name': 'byte', 'vocab_size': text.VOCAB_SIZE}
  if kind == 'tokens':
    m = tokens.read_manifest(arg)
    train, held_out = m['splits']['train'], m['splits']['eval']
    return {'tokenizer': m['tokenizer'], 'train_tokens': train['tokens'],
            'eval_tokens': held_out['tokens'], 'train_bytes': train['bytes'],
            'eval_bytes': held_out['bytes'], 'eval_bytes_per_token': m['eval_bytes_per_token'],
            'tokens_per_epoch': tokens.tokens_per_epoch(train['tokens'], seq_len),
            'source': m['source']}
  if kind in ('stdlib', 'textdir'):
    train, held_out, _, report = (text.read_stdlib() if kind == 'stdlib'
                                  else text.read_folder(arg, suffixes))
    # Windows are drawn with replacement here: an epoch is the train bytes' worth of tokens.
    return {'tokenizer': byte, 'train_tokens': len(train), 'eval_tokens': len(held_out),
            'tokens_per_epoch': len(train), 'source': {'report': report}}
  return {'tokenizer': byte, 'tokens_per_epoch': None}  # tfds: records of unknown total size


def model_config(c: config_dict.ConfigDict) -> config_dict.ConfigDict:
  """c.model, with the tokenizer's vocabulary when vocab_size is left at the byte default."""
  vocab = corpus(c)['tokenizer']['vocab_size']
  if c.model.vocab_size != text.VOCAB_SIZE or vocab == text.VOCAB_SIZE:
    return c.model
  m = c.model.copy_and_resolve_references()
  m.vocab_size = vocab
  return m


def make_model(c: config_dict.ConfigDict, rngs: nnx.Rngs) -> Transformer:
  return Transformer(model_config(c), dtype=jnp.dtype(precision.compute_dtype(c.dtype)), rngs=rngs)


def make_data(c: config_dict.ConfigDict, process_index: int, process_count: int) -> Data:
  data = spec.parse(c.dataset, family=DATA)
  kind, arg = data.kind, data.arg
  shared = dict(seq_len=c.model.seq_len, batch_size=c.batch_size, n_eval_batches=c.eval_batches,
                seed=c.seed, process_index=process_index, process_count=process_count)
  if kind == 'stdlib':
    train, held_out, fingerprint, _ = text.read_stdlib()
    return text.ByteWindows('stdlib', fingerprint, train, held_out, **shared)
  if kind == 'textdir':
    train, held_out, fingerprint, _ = text.read_folder(arg, _suffixes(c))
    return text.ByteWindows(c.dataset, fingerprint, train, held_out, **shared)
  if kind == 'tfds':
    return tfds_text.TfdsText(arg, c.data_dir or None, **shared)
  return tokens.TokenWindows(arg, **shared)


def loss_fn(model: Transformer, batch: dict, rng: jax.Array) -> tuple[jax.Array, dict]:
  del rng  # no dropout: the loss is a pure function of the parameters and the batch
  logits_BxLxV = model(batch['inputs'])
  loss = optax.softmax_cross_entropy_with_integer_labels(logits_BxLxV, batch['targets']).mean()
  return loss, {}


def eval_fn(model: Transformer, batch: dict) -> dict[str, jax.Array]:
  """Mean next-token loss, with the moments of its per-window means for the standard error."""
  logits_BxLxV = model(batch['inputs'])
  nats_BxL = optax.softmax_cross_entropy_with_integer_labels(logits_BxLxV, batch['targets'])
  loss_B = nats_BxL.mean(axis=1)
  # Bits per byte = total nats / (ln 2 * total bytes) over the eval windows: each window's nats
  # over the mean bytes of a window, so the mean over windows is that ratio. A byte is a token
  # unless the data gives its windows' bytes (tokens:DIR, from the tokenizer's bytes per id).
  window_bytes_B = batch.get('eval_window_bytes', jnp.full(loss_B.shape, nats_BxL.shape[1]))
  bits_B = nats_BxL.sum(axis=1) / (math.log(2) * window_bytes_B)
  return {'eval_loss': loss_B.mean(), 'eval_loss_moments': stderr.moments(loss_B),
          'eval_bits_per_byte': bits_B.mean(), 'eval_bits_per_byte_moments': stderr.moments(bits_B)}


def describe(c: config_dict.ConfigDict) -> dict:
  m = model_config(c)
  counts = flops.lm_param_counts(m)
  return {
      'model': {k: m[k] for k in SHAPE_FIELDS} | {'mlp': m.mlp, 'tied_embeddings': m.tied_embeddings},
      'n_params': counts['total'],
      'n_params_nonembedding': counts['nonembedding'],
      'flops_per_token': flops.lm_train_flops_per_token(m),
      'tokens_per_step': c.batch_size * m.seq_len,
      'corpus': corpus(c),
  }


def finish(model: Transformer, c: config_dict.ConfigDict, workdir: str) -> None:
  del model, c, workdir  # text samples come from `python -m scaling.sample`
