"""Datasets as deterministic random-access sources: a batch is a pure function of (seed, step)."""

from typing import Protocol

import numpy as np

Batch = dict[str, np.ndarray]


class Data(Protocol):
  name: str
  fingerprint: str  # sha256 of what the run reads; recorded in run.json
  inputs: dict  # what a run is bound to (`describe_inputs`); compared on every resume

  def train_batch(self, step: int) -> Batch:
    """This process's rows of the global training batch for `step`."""

  def eval_batches(self) -> list[Batch]:
    """This process's rows of the fixed held-out batches, the same for every run."""


def describe_inputs(name: str, fingerprint: str, tokenizer: dict | None, train: int, held_out: int,
                    unit: str, rule: str) -> dict:
  """run.json's `inputs`: the dataset, its fingerprint, the tokenizer (name, vocabulary and the
  sha256 of its model; None for images) and the split (the sizes of train and eval, and how the
  split was drawn). scaling.run_identity compares them on resume."""
  if tokenizer is not None:
    tokenizer = {k: tokenizer.get(k) for k in ('name', 'vocab_size', 'sha256')}
  return {'dataset': name, 'fingerprint': fingerprint, 'tokenizer': tokenizer,
          'split': {'train': int(train), 'eval': int(held_out), 'unit': unit, 'rule': rule}}


def process_rows(batch_size: int, process_index: int, process_count: int) -> slice:
  """The rows of a global batch that one process loads: contiguous, in process order."""
  per_process = batch_size // process_count
  return slice(process_index * per_process, (process_index + 1) * per_process)
