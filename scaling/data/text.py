"""Byte-level text: the Python standard library's source (the embedded default), or any folder of
text files (`textdir:`), read whole into memory. Large corpora go through
`python -m scaling.data.prepare` and `tokens:DIR` instead (scaling.data.tokens).

A folder is listed once by `list_folder`, which both paths share: only text files are kept
(binary files such as gzip or PNG are skipped and counted; a text file with a few bytes that are
not UTF-8 is kept, bytes and all), symlinks and byte-identical duplicates are resolved to one
file before the split, and each file goes to eval by a hash of its path (so the split is by
document and stable as files are added).

Tokens are bytes (vocab 256). A training batch is a pure function of (seed, step): random windows
of seq_len + 1 bytes, so resuming needs only the step. Eval windows are evenly spaced over the
held-out split and do not depend on the seed, so every run is scored on the same bytes.
"""

import codecs
import dataclasses
import functools
import hashlib
import os
import stat
import sysconfig
from typing import Callable, Iterable, Iterator

import numpy as np

from scaling.data import Batch, describe_inputs, process_rows
from scaling.errors import ConfigError

VOCAB_SIZE = 256
BYTE_TOKENIZER = {'name': 'byte', 'vocab_size': VOCAB_SIZE, 'sha256': None}
SEPARATOR = b'\0'  # between documents; never occurs in source text
_SKIP_DIRS = {'test', 'tests', 'idle_test', 'site-packages', 'dist-packages', '__pycache__'}
EVAL_PERCENT = 5
SPLIT_RULE = f'by document: {EVAL_PERCENT}% of files to eval by a hash of their path'
READ_BYTES = 16 << 20  # files are read in blocks of this size, so no file is held whole
# A file is binary if it holds a 0 byte, or if more than this fraction of it is not UTF-8 (a
# Latin-1 text with accents stays: its few odd bytes are kept, as byte-fallback tokens).
MAX_NON_UTF8 = 0.1


@dataclasses.dataclass(frozen=True)
class File:
  path: str
  relpath: str
  size: int
  sha256: str
  utf8: bool  # False: kept, but some bytes are not UTF-8


@dataclasses.dataclass
class Listing:
  """The text files of a folder, split by document, and what was left out and why."""
  train: list[File]
  eval: list[File]
  fingerprint: str  # sha256 over (relpath, content sha256) of the files read
  # counts: files, bytes, skipped_binary, skipped_unreadable, duplicates, non_utf8,
  # skipped_special (pipes, sockets, devices), skipped_unreadable_dirs
  report: dict


def _walk(root: str, suffixes: tuple[str, ...] | None) -> tuple[list[str], dict]:
  """(the regular files under root, in path order; counts of what was passed over). Pipes,
  sockets and devices are skipped (reading a pipe would wait forever), and so are folders that
  cannot be listed; both are counted, never dropped silently."""
  paths, skipped = [], {'skipped_special': 0, 'skipped_unreadable_dirs': 0}

  def unreadable(error: OSError) -> None:
    skipped['skipped_unreadable_dirs'] += 1

  for dirpath, dirnames, filenames in os.walk(root, onerror=unreadable):
    dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
    for name in sorted(filenames):
      if suffixes is not None and not name.endswith(suffixes):
        continue
      path = os.path.join(dirpath, name)
      try:
        regular = stat.S_ISREG(os.stat(path).st_mode)
      except OSError:  # a broken link, or gone: inspect counts it as unreadable
        regular = True
      if regular:
        paths.append(path)
      else:
        skipped['skipped_special'] += 1
  return paths, skipped


def _is_eval(relpath: str) -> bool:
  digest = hashlib.sha256(relpath.encode()).digest()
  return int.from_bytes(digest[:4], 'little') % 100 < EVAL_PERCENT


def blocks(path: str) -> Iterator[bytes]:
  """The file in blocks of about READ_BYTES, cut after a newline where there is one."""
  with open(path, 'rb') as f:
    carry = b''
    while block := f.read(READ_BYTES):
      block = carry + block
      cut = block.rfind(b'\n') + 1
      cut = cut if cut > 0 else len(block)
      carry = block[cut:]
      yield block[:cut]
    if carry:
      yield carry


def inspect(path: str) -> tuple[int, str, str]:
  """(size, content sha256, kind) where kind is 'text', 'non_utf8' (kept), 'binary' or 'unreadable'."""
  digest, size, bad = hashlib.sha256(), 0, 0
  decoder = codecs.getincrementaldecoder('utf-8')('replace')
  try:
    for block in blocks(path):
      if b'\0' in block:
        return size, '', 'binary'
      digest.update(block)
      size += len(block)
      bad += decoder.decode(block).count('\ufffd')
    bad += decoder.decode(b'', final=True).count('\ufffd')
  except OSError:
    return size, '', 'unreadable'
  kind = 'text' if bad == 0 else 'non_utf8' if bad <= MAX_NON_UTF8 * size else 'binary'
  return size, digest.hexdigest(), kind


def list_folder(root: str, suffixes: tuple[str, ...] | None = None, unique: bool = True,
                map_fn: Callable = map) -> Listing:
  """The folder's text files, split by a hash of their path. `unique` keeps one of each set of
  byte-identical files or links to one file (the first in path order), so no text sits in both
  splits. `map_fn` maps `inspect` over the paths (a process pool's imap reads them in parallel)."""
  if not os.path.isdir(root):
    raise ConfigError(f'dataset: {root!r} is not a folder; give textdir:/path/to/folder/of/text')
  paths, skipped = _walk(root, suffixes)
  splits = {False: [], True: []}
  report = dict(files=0, bytes=0, skipped_binary=0, skipped_unreadable=0, duplicates=0, non_utf8=0,
                **skipped)
  fingerprint, seen = hashlib.sha256(), set()
  for path, (size, sha, kind) in zip(paths, map_fn(inspect, paths)):
    if kind in ('binary', 'unreadable'):
      report[f'skipped_{kind}'] += 1
      continue
    if unique and sha in seen:
      report['duplicates'] += 1
      continue
    seen.add(sha)
    relpath = os.path.relpath(path, root)
    report['files'] += 1
    report['bytes'] += size
    report['non_utf8'] += kind == 'non_utf8'
    splits[_is_eval(relpath)].append(File(path, relpath, size, sha, kind == 'text'))
    fingerprint.update(relpath.encode() + SEPARATOR + bytes.fromhex(sha))
  if not splits[False] or not splits[True]:
    raise ConfigError(
        f'dataset: {root!r} has {report["files"]} text files ({len(splits[False])} train, '
        f'{len(splits[True])} eval; {report["skipped_binary"]} binary skipped); a split goes to eval '
        f'by a hash of the path ({EVAL_PERCENT}%), so give a folder with more text files'
        + (f' or drop data_suffixes={",".join(suffixes)}' if suffixes else ''))
  return Listing(splits[False], splits[True], fingerprint.hexdigest(), report)


def read_bytes(files: Iterable[File]) -> np.ndarray:
  chunks = []
  for f in files:
    chunks += list(blocks(f.path)) + [SEPARATOR]
  return np.frombuffer(b''.join(chunks), dtype=np.uint8)


@functools.lru_cache(maxsize=2)  # describe() and make_data() of one run read the folder once
def read_folder(root: str, suffixes: tuple[str, ...] | None = None, unique: bool = True
                ) -> tuple[np.ndarray, np.ndarray, str, dict]:
  """(train bytes, eval bytes, fingerprint, report) of a folder, documents ended by SEPARATOR."""
  listing = list_folder(root, suffixes, unique)
  return read_bytes(listing.train), read_bytes(listing.eval), listing.fingerprint, listing.report


def read_stdlib() -> tuple[np.ndarray, np.ndarray, str, dict]:
  # Duplicates stay: the embedded default reads the same bytes it always has (4 of its .py files
  # are copies), so the figures quoted for it stay reproducible.
  return read_folder(stdlib_root(), ('.py',), unique=False)


def stdlib_root() -> str:
  return sysconfig.get_paths()['stdlib']


def check_sizes(name: str, train_tokens: int, eval_tokens: int, seq_len: int, unit: str) -> None:
  """One line naming the sizes when a split is too short for one window of seq_len + 1."""
  for split, size in (('train', train_tokens), ('eval', eval_tokens)):
    if size < seq_len + 1 + (split == 'train'):
      raise ConfigError(f'dataset: the {split} split of {name} has {size} {unit}, too few for one '
                        f'window of seq_len + 1 = {seq_len + 1}; give more text or lower seq_len')


def check_eval_windows(name: str, eval_tokens: int, seq_len: int, n_batches: int, batch_size: int,
                       unit: str) -> None:
  """Eval windows are spread evenly over the eval split and must not overlap: overlapping windows
  score the same tokens more than once, and their standard error would pretend they were
  independent. Windows of seq_len + 1 share at most one token, as input of one and target of the
  one before (as train windows do)."""
  fit = (eval_tokens - 1) // seq_len
  if n_batches * batch_size > fit:
    fix = (f'give eval_batches at most {fit // batch_size}' if fit >= batch_size
           else 'lower batch_size or seq_len')
    raise ConfigError(f'eval_batches: {n_batches} x batch_size {batch_size} = '
                      f'{n_batches * batch_size} eval windows of {seq_len} {unit} would overlap in '
                      f'the {eval_tokens:,} {unit} of the eval split of {name}, where {fit} fit; '
                      f'{fix}, or give a larger eval split')


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

  def __post_init__(self):
    check_sizes(self.name, len(self.train), len(self.eval), self.seq_len, 'bytes')
    check_eval_windows(self.name, len(self.eval), self.seq_len, self.n_eval_batches,
                       self.batch_size, 'bytes')
    self.inputs = describe_inputs(self.name, self.fingerprint, BYTE_TOKENIZER, len(self.train),
                                  len(self.eval), 'bytes', SPLIT_RULE)

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
    starts_N = np.linspace(0, len(self.eval) - self.seq_len - 1, n).astype(np.int64)
    windows_NxL = self.eval[starts_N[:, None] + np.arange(self.seq_len + 1)]
    return [self._local(w) for w in windows_NxL.reshape(self.n_eval_batches, self.batch_size, -1)]
