"""Datasets as deterministic random-access sources: a batch is a pure function of (seed, step)."""

from typing import Protocol

import numpy as np

Batch = dict[str, np.ndarray]


class Data(Protocol):
  name: str
  fingerprint: str  # sha256 of what the run reads; recorded in run.json

  def train_batch(self, step: int) -> Batch:
    """This process's rows of the global training batch for `step`."""

  def eval_batches(self) -> list[Batch]:
    """This process's rows of the fixed held-out batches, the same for every run."""


def process_rows(batch_size: int, process_index: int, process_count: int) -> slice:
  """The rows of a global batch that one process loads: contiguous, in process order."""
  per_process = batch_size // process_count
  return slice(process_index * per_process, (process_index + 1) * per_process)
