"""Byte-level text: the Python standard library's source (the embedded default), any folder of
text files, or a prepared TFDS text dataset read through `tfds.data_source` (no TensorFlow).

Tokens are bytes (vocab 256). A training batch is a pure function of (seed, step): random windows
of seq_len + 1 bytes, so resuming needs only the step. Eval windows are evenly spaced over the
held-out split and do not depend on the seed, so every run is scored on the same bytes.
"""

import dataclasses
import hashlib
import os
import sysconfig

import numpy as np

from scaling.data import Batch, process_rows
from scaling.errors import ConfigError

VOCAB_SIZE = 256
SEPARATOR = b'\0'  # between documents; never occurs in source text
_SKIP_DIRS = {'test', 'tests', 'idle_test', 'site-packages', 'dist-packages', '__pycache__'}
EVAL_PERCENT = 5


def _walk(root: str, suffixes: tuple[str, ...] | None) -> list[str]:
  paths = []
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
    paths += [os.path.join(dirpath, f) for f in sorted(filenames)
              if suffixes is None or f.endswith(suffixes)]
  return paths


def _is_eval(relpath: str) -> bool:
  digest = hashlib.sha256(relpath.encode()).digest()
  return int.from_bytes(digest[:4], 'little') % 100 < EVAL_PERCENT


def read_folder(root: str, suffixes: tuple[str, ...] | None = None) -> tuple[np.ndarray, np.ndarray, str]:
  """(train bytes, eval bytes, sha256 fingerprint); files go to eval by a hash of their path."""
  if not os.path.isdir(root):
    raise ConfigError(f'dataset: {root!r} is not a folder; give textdir:/path/to/folder/of/text')
  parts = {False: [], True: []}
  fingerprint = hashlib.sha256()
  for path in _walk(root, suffixes):
    with open(path, 'rb') as f:
      text = f.read()
    relpath = os.path.relpath(path, root)
    parts[_is_eval(relpath)].append(text + SEPARATOR)
    fingerprint.update(relpath.encode() + SEPARATOR + hashlib.sha256(text).digest())
  if not parts[False] or not parts[True]:
    raise ConfigError(f'dataset: {root!r} needs enough text files for both train and eval splits')
  to_array = lambda chunks: np.frombuffer(b''.join(chunks), dtype=np.uint8)
  return to_array(parts[False]), to_array(parts[True]), fingerprint.hexdigest()


def stdlib_root() -> str:
  return sysconfig.get_paths()['stdlib']


@dataclasses.dataclass
class ByteWindows:
  """Random windows over a byte stream, host-sharded by rows of the global batch."""
  name: str
  fingerprint: str
  train: np.ndarray
  eval: np.ndarray
  seq_len: int
  batch_size: int
  n_eval_batches: int
  seed: int
  process_index: int = 0
  process_count: int = 1

  def _local(self, rows_BxL: np.ndarray) -> Batch:
    rows = rows_BxL[process_rows(self.batch_size, self.process_index, self.process_count)]
    rows = rows.astype(np.int32)
    return {'inputs': rows[:, :-1], 'targets': rows[:, 1:]}

  def train_batch(self, step: int) -> Batch:
    rng = np.random.default_rng([self.seed, step])
    starts_B = rng.integers(0, len(self.train) - self.seq_len - 1, size=self.batch_size)
    return self._local(self.train[starts_B[:, None] + np.arange(self.seq_len + 1)])

  def eval_batches(self) -> list[Batch]:
    n = self.n_eval_batches * self.batch_size
    if len(self.eval) < self.seq_len + 1:
      raise ConfigError(f'dataset: the eval split of {self.name} is shorter than seq_len + 1')
    starts_N = np.linspace(0, len(self.eval) - self.seq_len - 1, n).astype(np.int64)
    windows_NxL = self.eval[starts_N[:, None] + np.arange(self.seq_len + 1)]
    return [self._local(w) for w in windows_NxL.reshape(self.n_eval_batches, self.batch_size, -1)]
