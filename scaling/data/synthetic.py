"""Random batches with the shapes and value ranges a task's loss reads: for timing a step
(benchmarks/) and for golden numbers that must not depend on a corpus (tests/). A step's time
does not depend on the values, and a fresh accelerator host has no datasets."""

import numpy as np

from scaling.data import Batch


def batch(c, rng: np.random.Generator) -> Batch:
  """One global batch for config `c`: LM tokens in [0, vocab), or DiT images in [-1, 1]."""
  B, m = c.batch_size, c.model
  if c.task == 'lm':
    tokens = rng.integers(0, m.vocab_size, (B, m.seq_len + 1), dtype=np.int32)
    return {'inputs': tokens[:, :-1], 'targets': tokens[:, 1:]}
  image = rng.uniform(-1, 1, (B, m.image_size, m.image_size, m.channels)).astype(np.float32)
  return {'image': image, 'label': rng.integers(0, max(m.num_classes, 1), (B,), dtype=np.int32)}
