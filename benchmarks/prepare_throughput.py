"""Throughput and peak memory of `python -m scaling.data.prepare` on a generated corpus.

  python -m benchmarks.prepare_throughput [--gb=1] [--tokenizer=byte] [--workers=0] [--dir=TMP]

Writes --gb GB of text files (words drawn from a Zipf law over a synthetic vocabulary, 2 MB per
file, so the corpus has realistic subword statistics), then prepares it into token shards with
every core in a fresh process, and prints MB of text per second (tokenizer training included,
for sentencepiece) and the peak resident memory of that process and of its largest worker.
Generated files are deleted afterwards.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from scaling.data import prepare

FILE_MB = 2


def generate(root: str, gb: float, seed: int = 0) -> int:
  """Text files of Zipf-distributed words; returns the bytes written."""
  rng = np.random.default_rng(seed)
  letters = np.frombuffer(b'abcdefghijklmnopqrstuvwxyz', np.uint8)
  vocab = [bytes(rng.choice(letters, rng.integers(2, 11))) for _ in range(50_000)]
  p = 1 / np.arange(1, len(vocab) + 1)
  words = np.array(vocab, dtype=object)[rng.choice(len(vocab), 3_000_000, p=p / p.sum())]
  base = b' '.join(b' '.join(words[i:i + 12]) + b'\n' for i in range(0, len(words), 12))
  os.makedirs(root, exist_ok=True)
  size, total, i = FILE_MB << 20, int(gb * 2**30), 0
  while i * size < total:
    start = int(rng.integers(0, len(base) - size))
    with open(os.path.join(root, f'part{i:05d}.txt'), 'wb') as f:
      f.write(base[start:start + size])
    i += 1
  return i * size


def peak_rss_mb(who: int) -> float:
  return resource.getrusage(who).ru_maxrss / 1024  # Linux reports KiB


def measure(src: str, out: str, tokenizer: str, workers: int) -> dict:
  """Run in a fresh process, so its peak memory is prepare's own."""
  start = time.perf_counter()
  manifest = prepare.prepare(f'textdir:{src}', tokenizer, out, workers=workers, progress=False)
  return {'seconds': time.perf_counter() - start,
          'tokens': manifest['splits']['train']['tokens'] + manifest['splits']['eval']['tokens'],
          'self_mb': peak_rss_mb(resource.RUSAGE_SELF),
          'worker_mb': peak_rss_mb(resource.RUSAGE_CHILDREN)}


def main() -> None:
  p = argparse.ArgumentParser(prog='python -m benchmarks.prepare_throughput')
  p.add_argument('--measure', nargs=2, metavar=('SRC', 'OUT'), help=argparse.SUPPRESS)
  p.add_argument('--gb', type=float, default=1.0)
  p.add_argument('--tokenizer', default='byte')
  p.add_argument('--workers', type=int, default=0, help='0: every core')
  p.add_argument('--dir', default=None, help='scratch folder (default: a temporary one)')
  args = p.parse_args()
  if args.measure:
    print(json.dumps(measure(*args.measure, args.tokenizer, args.workers)))
    return
  scratch = tempfile.mkdtemp(dir=args.dir, prefix='prepare-bench-')
  try:
    src, out = os.path.join(scratch, 'text'), os.path.join(scratch, 'tokens')
    t0 = time.perf_counter()
    n_bytes = generate(src, args.gb)
    print(f'generated {n_bytes / 2**20:,.0f} MB of text in {time.perf_counter() - t0:.1f} s')
    child = subprocess.run([sys.executable, '-m', 'benchmarks.prepare_throughput', '--measure', src,
                            out, f'--tokenizer={args.tokenizer}', f'--workers={args.workers}'],
                           check=True, capture_output=True, text=True)
    m = json.loads(child.stdout.strip().splitlines()[-1])
    workers = args.workers or os.cpu_count()
    print(f'prepare --tokenizer={args.tokenizer} with {workers} workers: {m["seconds"]:.1f} s, '
          f'{n_bytes / 2**20 / m["seconds"]:.1f} MB/s, {m["tokens"]:,} tokens '
          f'({n_bytes / m["tokens"]:.2f} bytes per token)')
    print(f'peak RSS: prepare process {m["self_mb"]:.0f} MB, largest worker {m["worker_mb"]:.0f} MB')
  finally:
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == '__main__':
  main()
