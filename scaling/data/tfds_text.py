"""Prepared TFDS text datasets (lm1b, tiny_shakespeare, c4, ...) as byte windows.

Read through `tfds.data_source` (ArrayRecord random access, no TensorFlow) and never downloaded:
a dataset that is not prepared is a ConfigError, because a download without network retries for
minutes. A window starts at a random record and runs on through the following records.
"""

import hashlib

import numpy as np

from scaling.data import Batch, describe_inputs, process_rows
from scaling.data.text import BYTE_TOKENIZER, SEPARATOR
from scaling.errors import ConfigError

EVAL_SPLITS = ('validation', 'test')
SPLIT_RULE = f'the dataset\'s own splits: train, and the first of {", ".join(EVAL_SPLITS)}'


def open_splits(name: str, data_dir: str | None) -> tuple:
  """(train source, held-out source) of a prepared dataset."""
  import tensorflow_datasets as tfds  # slow import: only for runs that read TFDS
  try:
    splits = tfds.data_source(name, data_dir=data_dir, download=False)
  except Exception:  # tfds raises several types for "not prepared"
    splits = {}
  if not splits:
    raise ConfigError(f'dataset: tfds:{name} is not prepared in {data_dir or "the TFDS data dir"}; '
                      f'prepare it with `tfds build {name} --file_format=array_record` on a machine '
                      'with network, or set --config.data_dir to where it is')
  held_out = next((splits[s] for s in EVAL_SPLITS if s in splits), None)
  if 'train' not in splits or held_out is None:
    raise ConfigError(f'dataset: tfds:{name} needs a train split and a validation or test split; '
                      f'it has {", ".join(splits)}')
  return splits['train'], held_out


def record_text(record: dict) -> bytes:
  value = record['text']
  return value if isinstance(value, bytes) else str(value).encode()


def fingerprint(name: str, train, held_out) -> str:
  """Cheap and stable: the sizes of the splits and their first records."""
  return hashlib.sha256(f'{name}:{len(train)}:{len(held_out)}'.encode() + record_text(train[0])
                        + record_text(held_out[0])).hexdigest()


class TfdsText:

  def __init__(self, name: str, data_dir: str | None, *, seq_len: int, batch_size: int,
               n_eval_batches: int, seed: int,
               process_index: int = 0, process_count: int = 1):
    self.name = f'tfds:{name}'
    self.train_source, self.eval_source = open_splits(name, data_dir)
    if 'text' not in self.train_source[0]:
      raise ConfigError(f'dataset: tfds:{name} has no text feature; the lm task needs a text '
                        'dataset such as tfds:lm1b')
    self.seq_len, self.batch_size, self.n_eval_batches = seq_len, batch_size, n_eval_batches
    self.seed, self.process_index, self.process_count = seed, process_index, process_count
    self.fingerprint = fingerprint(name, self.train_source, self.eval_source)
    if n_eval_batches * batch_size > len(self.eval_source):  # more windows than records: repeats
      raise ConfigError(f'eval_batches: {n_eval_batches} x batch_size {batch_size} eval windows '
                        f'would repeat the {len(self.eval_source):,} records of the eval split of '
                        f'{self.name}; give eval_batches at most '
                        f'{max(1, len(self.eval_source) // batch_size)}')
    self.inputs = describe_inputs(self.name, self.fingerprint, BYTE_TOKENIZER,
                                  len(self.train_source), len(self.eval_source), 'records',
                                  SPLIT_RULE)

  def _window(self, source, start: int) -> np.ndarray:
    chunks, size, i = [], 0, start
    while size < self.seq_len + 1:
      chunks.append(record_text(source[i % len(source)]) + SEPARATOR)
      size, i = size + len(chunks[-1]), i + 1
    return np.frombuffer(b''.join(chunks)[:self.seq_len + 1], dtype=np.uint8)

  def _local(self, source, starts_B: np.ndarray) -> Batch:
    mine = starts_B[process_rows(self.batch_size, self.process_index, self.process_count)]
    rows = np.stack([self._window(source, int(s)) for s in mine]).astype(np.int32)
    return {'inputs': rows[:, :-1], 'targets': rows[:, 1:]}

  def train_batch(self, step: int) -> Batch:
    rng = np.random.default_rng([self.seed, step])
    return self._local(self.train_source, rng.integers(0, len(self.train_source), self.batch_size))

  def eval_batches(self) -> list[Batch]:
    n = self.n_eval_batches * self.batch_size
    starts = np.linspace(0, len(self.eval_source) - 1, n).astype(np.int64)
    return [self._local(self.eval_source, s) for s in starts.reshape(self.n_eval_batches, -1)]
