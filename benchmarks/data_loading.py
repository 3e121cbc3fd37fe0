"""Host time to produce one training batch: a prepared folder read by memory map (tokens:DIR)
against the in-memory byte path (the embedded stdlib corpus), at the shapes of real runs.

  python -m benchmarks.data_loading [--tokens=DIR] [--shapes=64x1024,256x2048] [--steps=50]

Without --tokens it prepares the stdlib corpus with the byte tokenizer into a temporary folder,
so both paths read the same bytes. Each shape is timed over --steps consecutive steps after one
untimed step; the figure is the median time of `data.train_batch(step)`, which is what the loop
waits for before each step (the whole global batch, as one process of one host loads it). The
page cache is warm after the first pass over a window, as it is for a corpus that fits in RAM;
a corpus larger than RAM adds the disk's random-read latency.
"""

import argparse
import os
import tempfile
import time

import numpy as np

from scaling.data import prepare, text, tokens


def time_batches(data, steps: int) -> float:
  data.train_batch(0)
  times = []
  for step in range(1, steps + 1):
    start = time.perf_counter()
    data.train_batch(step)
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def main() -> None:
  p = argparse.ArgumentParser(prog='python -m benchmarks.data_loading')
  p.add_argument('--tokens', help='a prepared folder (default: stdlib prepared here, bytes)')
  p.add_argument('--shapes', default='64x1024,256x2048', help='BATCHxSEQ_LEN,...')
  p.add_argument('--steps', type=int, default=50)
  args = p.parse_args()
  with tempfile.TemporaryDirectory() as scratch:
    root = args.tokens
    if root is None:
      root = os.path.join(scratch, 'stdlib')
      prepare.prepare('stdlib', 'byte', root, workers=1, progress=False)
    train, held_out, fingerprint, _ = text.read_stdlib()
    print(f'{"shape":>10} {"path":>28} {"ms/batch":>9} {"MB/s":>8}')
    for shape in args.shapes.split(','):
      batch, seq_len = map(int, shape.split('x'))
      shared = dict(seq_len=seq_len, batch_size=batch, n_eval_batches=1, seed=0)
      paths = {'tokens:DIR (memmap)': tokens.TokenWindows(root, **shared),
               'stdlib bytes (in memory)': text.ByteWindows('stdlib', fingerprint, train, held_out,
                                                            **shared)}
      for name, data in paths.items():
        seconds = time_batches(data, args.steps)
        mb = batch * (seq_len + 1) * 4 / 2**20  # the int32 batch handed to the device
        print(f'{shape:>10} {name:>28} {seconds * 1e3:>9.2f} {mb / seconds:>8.0f}')


if __name__ == '__main__':
  main()
