"""Prepare a corpus once, train on it many times: tokenizer, token shards and manifest.json.

  python -m scaling.data.prepare --dataset=textdir:/path|tfds:NAME|stdlib \
      --tokenizer=byte|sentencepiece:vocab=8192[,type=bpe]|sentencepiece:model=PATH --out=DIR \
      [--data_suffixes=.txt,.md] [--data_dir=TFDS_DIR] [--workers=N] [--shard_mb=64]

then train with --config.dataset=tokens:DIR. DIR holds

  train-00000.bin ...  eval-00000.bin ...  flat arrays of uint16 (vocab <= 65536) or uint32 ids,
                       each document followed by the tokenizer's separator; np.memmap reads them
  tokenizer.model      the sentencepiece model (none for byte)
  manifest.json        tokens and bytes per split, the tokenizer and its sha256, eval bytes per
                       token, the source and its fingerprint, and this tool's version

The split is by document, as for textdir: (scaling.data.text.list_folder: a hash of the path) and
TFDS (its own train and validation/test splits). The source is streamed in blocks, one shard per
task on a pool of `--workers` processes, so memory stays bounded whatever the corpus size. Each
shard is written to a temporary name and renamed with a small .json beside it when complete (its
tokens, bytes and sha256): a rerun skips the finished shards, and manifest.json is written last,
after every shard is checked on disk, so an interrupted prepare never leaves a manifest claiming
more than is there.

A rerun is also the repair: before it says "already prepared" it checks every shard against the
manifest (size and sha256), and it redoes what is missing, cut or altered, or rebuilds a cut
manifest from the shards' records. A full disk, a source file that vanishes or an interrupt ends
in one line, and no temporary file survives it.
"""

import argparse
import contextlib
import dataclasses
import errno
import hashlib
import importlib.metadata
import multiprocessing
import os
import pathlib
import sys
from typing import Iterator

import numpy as np
import tqdm

from scaling.data import spec, text, tfds_text, tokens
from scaling.data import tokenizer as tokenizers
from scaling.errors import ConfigError
from scaling.jsonfile import read_json, write_json_atomic

PLAN = 'prepare.json'  # what this folder is being prepared from; a rerun must ask for the same
TMP = '.tmp.'  # in the name of a file being written; none survives a prepare, failed or not
MODEL = 'tokenizer.model'
ENCODE_BYTES = 1 << 20  # text encoded per call: bounds a worker's Python lists of ids
TFDS_RECORDS_PER_TASK = 20_000


@dataclasses.dataclass(frozen=True)
class Task:
  """One shard: a list of files (textdir, stdlib) or a range of record ids (tfds)."""
  split: str
  index: int
  docs: tuple
  size: int  # bytes of text (files) or records (tfds), for the progress bar

  @property
  def file(self) -> str:
    return f'{self.split}-{self.index:05d}.bin'


# ----------------------------------------------------------------------------------------------
# Sources: a list of shard tasks, a fingerprint, and a sample of train text for the tokenizer.
# ----------------------------------------------------------------------------------------------
class FolderSource:

  def __init__(self, root: str, suffixes: tuple[str, ...] | None, unique: bool, pool):
    map_fn = (lambda f, xs: pool.imap(f, xs, 16)) if pool else map
    self.listing = text.list_folder(root, suffixes, unique, map_fn=map_fn)
    self.fingerprint, self.report = self.listing.fingerprint, self.listing.report
    self.split_rule = text.SPLIT_RULE

  def tasks(self, shard_bytes: int) -> list[Task]:
    return [Task(split, i, tuple(paths), size)
            for split, files in (('train', self.listing.train), ('eval', self.listing.eval))
            for i, (paths, size) in enumerate(_groups(files, shard_bytes))]

  def sample(self) -> Iterator[bytes]:
    # Files in an order set by a hash of their content, so the sample spreads over the corpus.
    for f in sorted(self.listing.train, key=lambda f: f.sha256):
      yield from text.blocks(f.path)


def _groups(files: list[text.File], shard_bytes: int) -> Iterator[tuple[list[str], int]]:
  """Consecutive files of about shard_bytes each (a larger file is a shard of its own)."""
  paths, size = [], 0
  for f in files:
    if paths and size + f.size > shard_bytes:
      yield paths, size
      paths, size = [], 0
    paths, size = paths + [f.path], size + f.size
  if paths:
    yield paths, size


class TfdsSource:

  def __init__(self, name: str, data_dir: str | None):
    self.name, self.data_dir = name, data_dir
    self.train, self.eval = tfds_text.open_splits(name, data_dir)
    self.fingerprint = tfds_text.fingerprint(name, self.train, self.eval)
    self.report = {'records': {'train': len(self.train), 'eval': len(self.eval)}}
    self.split_rule = tfds_text.SPLIT_RULE

  def tasks(self, shard_bytes: int) -> list[Task]:
    del shard_bytes  # records have no size until read: shards are ranges of records
    out = []
    for split, source in (('train', self.train), ('eval', self.eval)):
      for i, start in enumerate(range(0, len(source), TFDS_RECORDS_PER_TASK)):
        stop = min(start + TFDS_RECORDS_PER_TASK, len(source))
        out.append(Task(split, i, (start, stop), stop - start))
    return out

  def sample(self):
    stride = max(1, len(self.train) // 1_000_000)  # about a million records, spread evenly
    for i in range(0, len(self.train), stride):
      yield tfds_text.record_text(self.train[i])


def open_source(dataset: str, suffixes, data_dir: str | None, pool):
  source = spec.parse(dataset, '--dataset', family='text source')
  if source.kind == 'stdlib':
    return FolderSource(text.stdlib_root(), ('.py',), False, pool)  # the bytes read_stdlib reads
  if source.kind == 'textdir':
    return FolderSource(source.arg, suffixes, True, pool)
  return TfdsSource(source.arg, data_dir)


# ----------------------------------------------------------------------------------------------
# Workers: one shard each.
# ----------------------------------------------------------------------------------------------
_WORKER = {}  # per worker process: the tokenizer and the tfds source, loaded at its first task


def _setup_worker(tokenizer_proto: bytes | None, dataset: str, data_dir: str | None) -> None:
  if _WORKER.get('key') == (tokenizer_proto, dataset, data_dir):
    return
  _WORKER.clear()
  _WORKER['key'] = (tokenizer_proto, dataset, data_dir)
  _WORKER['tokenizer'] = (tokenizers.ByteTokenizer() if tokenizer_proto is None
                          else tokenizers.from_proto(tokenizer_proto))
  source = spec.parse(dataset, '--dataset', family='text source')
  if source.kind == 'tfds':
    _WORKER['tfds'] = tfds_text.open_splits(source.arg, data_dir)


def _documents(task: Task):
  """The task's documents, each as an iterator of pieces of at most about ENCODE_BYTES."""
  if 'tfds' in _WORKER:
    source = _WORKER['tfds'][task.split != 'train']
    for i in range(*task.docs):
      yield _pieces([tfds_text.record_text(source[i])])
  else:
    for path in task.docs:
      yield _pieces(text.blocks(path))


def _pieces(blocks):
  for block in blocks:
    for start in range(0, len(block), ENCODE_BYTES):
      yield block[start:start + ENCODE_BYTES]  # a cut in a UTF-8 character is kept as bytes


def encode_task(task: Task, out: str, dtype: str) -> dict:
  tok = _WORKER['tokenizer']
  path = os.path.join(out, task.file)
  tmp = f'{path}{TMP}{os.getpid()}'
  n_tokens = n_bytes = n_docs = 0
  separator = np.array([tok.separator], dtype=dtype).tobytes()
  digest = hashlib.sha256()  # of the shard's bytes: a rerun tells a cut or altered shard by it
  try:
    with open(tmp, 'wb') as f:
      for doc in _documents(task):
        for piece in doc:
          ids = tok.encode(piece).astype(dtype).tobytes()
          f.write(ids)
          digest.update(ids)
          n_tokens, n_bytes = n_tokens + len(ids) // np.dtype(dtype).itemsize, n_bytes + len(piece)
        f.write(separator)
        digest.update(separator)
        n_tokens, n_bytes, n_docs = n_tokens + 1, n_bytes + 1, n_docs + 1  # a separator is a byte
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):  # a full disk, a vanished file, an interrupt: no half shard is left
      os.unlink(tmp)
  info = {'file': task.file, 'tokens': n_tokens, 'bytes': n_bytes, 'documents': n_docs,
          'sha256': digest.hexdigest()}
  write_json_atomic(path + '.json', info)  # the shard is done once this exists
  return info


def _encode_in_worker(args) -> tuple[Task, dict]:
  task, out, dtype, setup = args
  _setup_worker(*setup)
  return task, encode_task(task, out, dtype)


def intact(out: str, shard: dict, dtype: str) -> bool:
  """The shard file has the size its record says and, where the record keeps one (every shard
  since checksums were added), the same sha256: a cut, missing or altered shard is not."""
  path = os.path.join(out, shard['file'])
  if not os.path.isfile(path) or os.path.getsize(path) != shard['tokens'] * np.dtype(dtype).itemsize:
    return False
  return 'sha256' not in shard or tokenizers.sha256_file(path) == shard['sha256']


def finished(out: str, task: Task, dtype: str) -> dict | None:
  info = read_json(os.path.join(out, task.file + '.json'), damaged_is_missing=True)
  return info if info and 'tokens' in info and intact(out, info, dtype) else None


# ----------------------------------------------------------------------------------------------
# The whole job.
# ----------------------------------------------------------------------------------------------
def tool_version() -> str:
  try:
    return importlib.metadata.version('scaling')
  except importlib.metadata.PackageNotFoundError:
    return 'unknown'


def _tokenizer(tok_spec: tokenizers.Spec, source, out: str, plan: dict | None, workers: int):
  """The tokenizer, its model written to out/tokenizer.model. A rerun reuses the trained model."""
  if tok_spec.name == 'byte':
    return tokenizers.ByteTokenizer()
  model = os.path.join(out, MODEL)
  if tok_spec.model:
    proto = pathlib.Path(tok_spec.model).read_bytes()
  elif plan and os.path.isfile(model) and tokenizers.sha256_file(model) == plan['tokenizer']['sha256']:
    proto = pathlib.Path(model).read_bytes()  # trained by the interrupted run this one finishes
  else:
    print(f'training a sentencepiece {tok_spec.type} tokenizer of {tok_spec.vocab} pieces on up to '
          f'{tok_spec.sample_mb:g} MB of train text', file=sys.stderr)
    proto = tokenizers.train_sentencepiece(tok_spec, source.sample(), workers)
  tok = tokenizers.from_proto(proto)
  tmp = f'{model}.tmp.{os.getpid()}'
  with open(tmp, 'wb') as f:
    f.write(proto)
  os.replace(tmp, model)
  return tok


def check_out(out: str, request: dict) -> dict | None:
  """The plan of an earlier, interrupted prepare of the same request, if any."""
  if os.path.exists(out) and not os.path.isdir(out):
    raise ConfigError(f'--out: {out} is a file; give a folder')
  plan = read_json(os.path.join(out, PLAN), damaged_is_missing=True) if os.path.isdir(out) else None
  if plan is None and os.path.isfile(os.path.join(out, PLAN)):
    raise ConfigError(f'--out: {os.path.join(out, PLAN)} is cut short, so what {out} holds is '
                      'unknown; give a new --out, or remove the folder and run again')
  if plan is None and os.path.isdir(out) and os.listdir(out):
    raise ConfigError(f'--out: {out} is not empty and holds no {PLAN}; give a new or empty folder')
  if plan is not None and plan['request'] != request:
    differ = sorted(k for k in request if plan['request'].get(k) != request[k])
    raise ConfigError(f'--out: {out} is being prepared with other settings ({", ".join(differ)} '
                      'differ); give another --out, or the same settings to finish it')
  return plan


def prepare(dataset: str, tokenizer: str, out: str, suffixes: tuple[str, ...] | None = None,
            data_dir: str | None = None, workers: int = 0, shard_mb: float = 64,
            progress: bool = True) -> dict:
  tok_spec = tokenizers.parse(tokenizer)
  if shard_mb <= 0:
    raise ConfigError(f'--shard_mb: {shard_mb} must be positive')
  workers = workers or os.cpu_count() or 1
  request = {'dataset': dataset, 'tokenizer': tokenizer, 'data_suffixes': list(suffixes or []),
             'shard_mb': shard_mb,
             'tokenizer_model_sha256': (tokenizers.sha256_file(tok_spec.model) if tok_spec.model
                                        else None)}
  plan = check_out(out, request)
  if plan is not None:
    remove_temporaries(out)  # left by a prepare that was killed
    manifest = verified_manifest(out)
    if manifest is not None:
      print(f'{out} is already prepared; every shard matches its size and checksum',
            file=sys.stderr)
      return manifest
  try:
    return _prepare(dataset, tok_spec, out, suffixes, data_dir, workers, shard_mb, progress,
                    request, plan)
  except BaseException as e:
    remove_temporaries(out)  # the workers' too: the pool was terminated on the way out
    if isinstance(e, OSError):
      raise ConfigError(_os_error(e, out)) from e
    raise


def _os_error(e: OSError, out: str) -> str:
  """One line for a file system failure during a prepare; the finished shards are kept."""
  if e.errno == errno.ENOSPC:
    return (f'--out: no space left on the device of {out} ({e.filename or "a shard"}); free '
            'space and run the same command again: finished shards are kept')
  if isinstance(e, FileNotFoundError):
    return (f'--dataset: {e.filename} vanished while it was being prepared; the source changed, '
            'so prepare it again into a new --out')
  return f'--out: {e.strerror} ({e.filename}); fix that and run the same command again'


def remove_temporaries(out: str) -> None:
  for name in os.listdir(out) if os.path.isdir(out) else []:
    if TMP in name:
      os.unlink(os.path.join(out, name))


def verified_manifest(out: str) -> dict | None:
  """manifest.json when it is complete and every shard it lists is intact; otherwise None, with
  a line saying what will be redone (a cut manifest is rebuilt from the shards' own records)."""
  path = os.path.join(out, tokens.MANIFEST)
  manifest = read_json(path, damaged_is_missing=True)
  try:
    shards = [s for split in manifest['splits'].values() for s in split['shards']]
  except (KeyError, TypeError, AttributeError):  # cut short, or not a manifest of this tool
    manifest = None
  if manifest is None:
    if os.path.exists(path):
      print(f'{path} is cut short; checking the shards and rebuilding it', file=sys.stderr)
    return None
  model_sha = manifest['tokenizer'].get('sha256')
  model = os.path.join(out, manifest['tokenizer'].get('file') or MODEL)
  if model_sha and (not os.path.isfile(model) or tokenizers.sha256_file(model) != model_sha):
    raise ConfigError(f'--out: {model} is missing or altered, and every shard of {out} was '
                      'encoded with the model it replaced; put that model back, or prepare the '
                      'source into a new --out')
  bad = [s['file'] for s in shards if not intact(out, s, manifest['dtype'])]
  if not bad:
    return manifest
  print(f'{out}: {len(bad)} of {len(shards)} shards are missing, cut or altered '
        f'({", ".join(bad[:3])}{", ..." if len(bad) > 3 else ""}); preparing them again',
        file=sys.stderr)
  os.unlink(path)  # not prepared until they are: a reader must not trust the old manifest
  for file in bad:
    marker = os.path.join(out, file + '.json')
    if os.path.exists(marker):
      os.unlink(marker)
  return None


def _prepare(dataset, tok_spec, out, suffixes, data_dir, workers, shard_mb, progress, request,
             plan) -> dict:
  # Spawned, not forked: the caller may have started threads (JAX does). One worker: no pool.
  with (multiprocessing.get_context('spawn').Pool(workers) if workers > 1
        else contextlib.nullcontext()) as pool:
    source = open_source(dataset, suffixes, data_dir, pool)
    if plan is not None and plan['fingerprint'] != source.fingerprint:
      raise ConfigError(f'--out: the source changed since {out} was started (fingerprint '
                        f'{source.fingerprint[:12]} vs {plan["fingerprint"][:12]}); give another '
                        '--out')
    os.makedirs(out, exist_ok=True)
    tok = _tokenizer(tok_spec, source, out, plan, workers)
    described = tok.describe() | {'file': MODEL if tok_spec.name != 'byte' else None}
    dtype = 'uint16' if tok.vocab_size <= 2**16 else 'uint32'
    tasks = source.tasks(int(shard_mb * 2**20))
    if plan is None:
      write_json_atomic(os.path.join(out, PLAN), {'request': request, 'tokenizer': described,
                                                  'fingerprint': source.fingerprint})
    done = _encode(tasks, out, dtype,
                   (tok.proto if tok_spec.name != 'byte' else None, dataset, data_dir),
                   pool, progress, unit='B' if isinstance(source, FolderSource) else ' records')
  manifest = _manifest(dataset, source, described, dtype, tasks, done, out)
  write_json_atomic(os.path.join(out, tokens.MANIFEST), manifest)
  return manifest


def _encode(tasks: list[Task], out: str, dtype: str, setup: tuple, pool, progress: bool,
            unit: str) -> dict:
  """Task -> its shard's info, encoding the shards that an earlier run did not finish."""
  done = {t: finished(out, t, dtype) for t in tasks}
  todo = [t for t in tasks if done[t] is None]
  bar = tqdm.tqdm(total=sum(t.size for t in tasks), initial=sum(t.size for t in tasks if done[t]),
                  unit=unit, unit_scale=True, desc=f'prepare {os.path.basename(out.rstrip("/"))}',
                  disable=not progress)
  imap = pool.imap_unordered if pool else map
  for task, info in imap(_encode_in_worker, [(t, out, dtype, setup) for t in todo]):
    done[task] = info
    bar.update(task.size)
  bar.close()
  return done


def _manifest(dataset, source, described, dtype, tasks, done, out) -> dict:
  splits = {}
  for split in ('train', 'eval'):
    shards = [done[t] for t in tasks if t.split == split]
    for shard in shards:  # what the manifest claims is what is on disk
      if os.path.getsize(os.path.join(out, shard['file'])) != shard['tokens'] * np.dtype(dtype).itemsize:
        raise ConfigError(f'--out: {shard["file"]} changed on disk while preparing; run again')
    splits[split] = {k: sum(s[k] for s in shards) for k in ('tokens', 'bytes', 'documents')}
    splits[split]['shards'] = [{k: s[k] for k in ('file', 'tokens', 'bytes', 'sha256')}
                               for s in shards]
  return {
      'format_version': tokens.FORMAT_VERSION,
      'tool': {'name': 'scaling.data.prepare', 'version': tool_version()},
      'source': {'dataset': dataset, 'fingerprint': source.fingerprint, 'report': source.report},
      'split_rule': source.split_rule,
      'tokenizer': described,
      'dtype': dtype,
      'separator': 'each document is followed by the tokenizer separator id, counted as one byte',
      'splits': splits,
      'eval_bytes_per_token': splits['eval']['bytes'] / max(1, splits['eval']['tokens']),
  }


class _Parser(argparse.ArgumentParser):
  def error(self, message: str):  # one line, no usage dump
    self.exit(2, f'{self.prog}: error: {message} (see --help)\n')


def main(argv: list[str] | None = None) -> None:
  p = _Parser(prog='python -m scaling.data.prepare', description=__doc__.split('\n')[0])
  p.add_argument('--dataset', required=True, help='textdir:/path, tfds:NAME or stdlib')
  p.add_argument('--tokenizer', default='byte',
                 help='byte, sentencepiece:vocab=N[,type=bpe|unigram][,sample_mb=MB], or '
                      'sentencepiece:model=PATH')
  p.add_argument('--out', required=True, help='folder to write (a rerun finishes it)')
  p.add_argument('--data_suffixes', default='', help='textdir: only files ending so, e.g. .txt,.md')
  p.add_argument('--data_dir', default='', help='tfds: the TFDS data dir')
  p.add_argument('--workers', type=int, default=0, help='processes (default: every core)')
  p.add_argument('--shard_mb', type=float, default=64, help='text per shard, MB')
  args = p.parse_args(argv)
  if args.workers < 0:
    p.error(f'--workers: {args.workers} must be at least 0')
  suffixes = tuple(s for s in args.data_suffixes.split(',') if s) or None
  try:
    m = prepare(args.dataset, args.tokenizer, args.out, suffixes, args.data_dir or None,
                args.workers, args.shard_mb, progress=sys.stderr.isatty())
  except ConfigError as e:
    sys.exit(f'error: {e}')
  except KeyboardInterrupt:
    print(f'interrupted; {args.out} keeps its finished shards: run the same command to finish it',
          file=sys.stderr)
    sys.exit(130)
  s = m['splits']
  report = m['source']['report']
  passed = {k: v for k, v in report.items() if v and (k.startswith('skipped') or k == 'duplicates')}
  print(f'{args.out}: train {s["train"]["tokens"]:,} tokens ({s["train"]["bytes"]:,} bytes), eval '
        f'{s["eval"]["tokens"]:,} tokens, {m["eval_bytes_per_token"]:.3f} eval bytes per token, '
        f'{m["tokenizer"]["name"]} vocab {m["tokenizer"]["vocab_size"]}; '
        + (', '.join(f'{k} {v:,}' for k, v in passed.items()) if passed else 'no file skipped'))


if __name__ == '__main__':
  main()
