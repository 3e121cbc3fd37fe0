"""Prepared token shards (`tokens:DIR`, written by `python -m scaling.data.prepare`), read by memory
map: a run never loads the corpus, and each process reads only its own rows of the global batch.

Training windows are drawn without replacement. The train split is cut into the non-overlapping
windows w = 0 .. n_windows - 1 (window w holds tokens [w*L, w*L + L + 1), L = seq_len, so
neighbours share one token, as input and target); epoch e visits all of them once, in the order
of a keyed bijection of [0, n_windows) (a Feistel network with cycle walking, keyed by (seed, e)),
in O(1) memory. Row r of step s is global window number s * batch + r, so a batch is a pure
function of (seed, step) and resume is bit-exact.

An epoch is therefore n_windows * seq_len tokens ("tokens_per_epoch", recorded in run.json); the
at most seq_len tokens after the last full window are not trained on.
"""

import json
import os

import numpy as np

from scaling.data import Batch, describe_inputs, process_rows
from scaling.data import text
from scaling.data import tokenizer as tokenizers
from scaling.errors import ConfigError

MANIFEST = 'manifest.json'
FORMAT_VERSION = 1
FEISTEL_ROUNDS = 6
_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))


def read_manifest(root: str) -> dict:
  """The manifest, checked against the files on disk (one line for each way it can be wrong)."""
  path = os.path.join(root, MANIFEST)
  if not os.path.isdir(root):
    raise ConfigError(f'dataset: tokens:{root} is not a folder; prepare one with '
                      '`python -m scaling.data.prepare --out=DIR`')
  if not os.path.isfile(path):
    raise ConfigError(f'dataset: {path} is missing (an unfinished prepare?); run '
                      f'`python -m scaling.data.prepare ... --out={root}` again to finish it')
  try:
    with open(path) as f:
      manifest = json.load(f)
    splits = {s: manifest['splits'][s] for s in ('train', 'eval')}
    np.dtype(manifest['dtype'])
    manifest['tokenizer']['vocab_size'], manifest['source']['fingerprint']
  except (ValueError, KeyError, TypeError) as e:
    raise ConfigError(f'dataset: {path} is not a complete manifest ({type(e).__name__}: {e}); '
                      'run its prepare command again, which rebuilds it') from None
  itemsize = np.dtype(manifest['dtype']).itemsize
  for split, info in splits.items():
    for shard in info['shards']:
      file = os.path.join(root, shard['file'])
      on_disk = os.path.getsize(file) if os.path.isfile(file) else None
      if on_disk != shard['tokens'] * itemsize:
        raise ConfigError(f'dataset: {file} has {on_disk} bytes but {MANIFEST} says '
                          f'{shard["tokens"]} {manifest["dtype"]} tokens; run its prepare command '
                          'again, which redoes the shards that are missing or cut')
  if manifest['tokenizer']['sha256']:
    model = os.path.join(root, manifest['tokenizer']['file'])
    actual = tokenizers.sha256_file(model) if os.path.isfile(model) else 'missing'
    if actual != manifest['tokenizer']['sha256']:
      raise ConfigError(f'dataset: the tokenizer {model} has sha256 {actual[:12]}, but {MANIFEST} '
                        f'says {manifest["tokenizer"]["sha256"][:12]}; put back the model it was '
                        'prepared with, or prepare the source into a new folder')
  return manifest


def load_tokenizer(root: str, manifest: dict) -> tokenizers.Tokenizer:
  if manifest['tokenizer']['name'] == 'byte':
    return tokenizers.ByteTokenizer()
  return tokenizers.load(f'sentencepiece:model={os.path.join(root, manifest["tokenizer"]["file"])}')


def tokens_per_epoch(train_tokens: int, seq_len: int) -> int:
  return (train_tokens - 1) // seq_len * seq_len


class Shards:
  """The shards of one split as one stream of tokens, each shard memory-mapped."""

  def __init__(self, root: str, info: dict, dtype: str):
    # ndarray views of the maps: still read on demand, without np.memmap's per-index overhead
    self.maps = [np.asarray(np.memmap(os.path.join(root, s['file']), dtype=dtype, mode='r'))
                 for s in info['shards'] if s['tokens']]
    self.ends = np.cumsum([len(m) for m in self.maps])
    self.tokens = int(self.ends[-1]) if self.maps else 0

  def read(self, start: int, length: int) -> np.ndarray:
    """tokens [start, start + length), which may run over a shard boundary."""
    i = int(np.searchsorted(self.ends, start, side='right'))
    parts = []
    while length > 0:
      offset = start - (int(self.ends[i - 1]) if i else 0)
      part = self.maps[i][offset:offset + length]
      parts.append(part)
      start, length, i = start + len(part), length - len(part), i + 1
    return parts[0] if len(parts) == 1 else np.concatenate(parts)

  def read_rows(self, starts: np.ndarray, length: int) -> np.ndarray:
    """[len(starts), length] int32 rows; those inside one shard by a single gather from its map."""
    starts = np.asarray(starts, dtype=np.int64)
    out = np.empty((len(starts), length), dtype=np.int32)
    shard = np.searchsorted(self.ends, starts, side='right')
    begins = np.concatenate([[0], self.ends[:-1]])
    inside = starts + length <= self.ends[np.minimum(shard, len(self.ends) - 1)]
    for i in np.unique(shard[inside]):
      rows = np.flatnonzero(inside & (shard == i))
      out[rows] = self.maps[i][(starts[rows] - begins[i])[:, None] + np.arange(length)]
    for r in np.flatnonzero(~inside):  # a window over a shard boundary
      out[r] = self.read(int(starts[r]), length)
    return out


def feistel_keys(seed: int, epoch: int) -> np.ndarray:
  return np.random.SeedSequence([seed, epoch, 0x5EED]).generate_state(FEISTEL_ROUNDS, np.uint64)


def _round(x: np.ndarray, key: np.uint64, mask: np.uint64) -> np.ndarray:
  x = (x ^ key) * _MIX[0]  # splitmix64's finalizer, keyed
  x = (x ^ (x >> np.uint64(30))) * _MIX[1]
  x = (x ^ (x >> np.uint64(27))) * _MIX[2]
  return (x ^ (x >> np.uint64(31))) & mask


def permute(index: np.ndarray, n: int, keys: np.ndarray) -> np.ndarray:
  """A keyed bijection of [0, n) applied to `index`: a balanced Feistel network on the smallest
  even number of bits covering n, walking the cycle until the value falls back inside [0, n)."""
  half = max(1, (int(n - 1).bit_length() + 1) // 2)
  mask, shift = np.uint64((1 << half) - 1), np.uint64(half)
  x = np.asarray(index, dtype=np.uint64).copy()
  todo = np.ones(x.shape, dtype=bool)
  while todo.any():
    left, right = x[todo] >> shift, x[todo] & mask
    for key in keys:
      left, right = right, left ^ _round(right, key, mask)
    x[todo] = (left << shift) | right
    todo = x >= np.uint64(n)
  return x.astype(np.int64)


class TokenWindows:
  """scaling.data.Data over a prepared folder."""

  def __init__(self, root: str, *, seq_len: int, batch_size: int, n_eval_batches: int, seed: int,
               process_index: int = 0, process_count: int = 1):
    self.name = f'tokens:{root}'
    manifest = read_manifest(root)
    self.fingerprint = manifest['source']['fingerprint']
    self.train = Shards(root, manifest['splits']['train'], manifest['dtype'])
    self.eval = Shards(root, manifest['splits']['eval'], manifest['dtype'])
    text.check_sizes(self.name, self.train.tokens, self.eval.tokens, seq_len, 'tokens')
    self.inputs = describe_inputs(self.name, self.fingerprint, manifest['tokenizer'],
                                  self.train.tokens, self.eval.tokens, 'tokens',
                                  manifest.get('split_rule'))
    self.n_windows = tokens_per_epoch(self.train.tokens, seq_len) // seq_len
    if self.n_windows < batch_size:
      raise ConfigError(f'dataset: the train split of {self.name} has {self.train.tokens} tokens, '
                        f'{self.n_windows} windows of seq_len {seq_len}: fewer than one batch of '
                        f'{batch_size}; give more text or lower batch_size or seq_len')
    text.check_eval_windows(self.name, self.eval.tokens, seq_len, n_eval_batches, batch_size,
                            'tokens')
    self.bytes_per_token = load_tokenizer(root, manifest).bytes_per_token()
    self.seq_len, self.batch_size, self.n_eval_batches = seq_len, batch_size, n_eval_batches
    self.seed, self.rows = seed, process_rows(batch_size, process_index, process_count)

  def window_ids(self, step: int) -> np.ndarray:
    """The train windows of this process's rows at `step`."""
    g = step * self.batch_size + np.arange(self.batch_size)[self.rows]
    epoch, position = np.divmod(g, self.n_windows)
    ids = np.empty_like(g)
    for e in np.unique(epoch):  # a batch spans at most two epochs
      ids[epoch == e] = permute(position[epoch == e], self.n_windows, feistel_keys(self.seed, e))
    return ids

  def train_batch(self, step: int) -> Batch:
    rows = self.train.read_rows(self.window_ids(step) * self.seq_len, self.seq_len + 1)
    return {'inputs': rows[:, :-1], 'targets': rows[:, 1:]}

  def eval_batches(self) -> list[Batch]:
    """Evenly spaced windows over the eval split, the same for every seed, each row carrying the
    mean UTF-8 bytes of the targets of all eval windows (for bits per byte, see lm.eval_fn)."""
    n, L = self.n_eval_batches * self.batch_size, self.seq_len
    starts_N = np.linspace(0, self.eval.tokens - L - 1, n).astype(np.int64)
    window_bytes = np.mean([self.bytes_per_token[self.eval.read(int(s) + 1, L)].sum()
                            for s in starts_N], dtype=np.float64)
    batches = []
    for starts_B in starts_N.reshape(self.n_eval_batches, self.batch_size):
      rows = self.eval.read_rows(starts_B[self.rows], L + 1)
      batches.append({'inputs': rows[:, :-1], 'targets': rows[:, 1:],
                      'eval_window_bytes': np.full(len(rows), window_bytes, np.float32)})
    return batches
