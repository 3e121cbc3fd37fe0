"""configs/sweeps/lr_batch.py: the grid the hparams laws are fitted to, as the launcher resolves it."""

import collections

import pytest

from configs.sweeps import lr_batch
from experiments import runspec
from scaling.errors import ConfigError


def test_every_cell_sees_one_token_count_and_every_run_the_same_eval_windows():
  study = runspec.load('configs/sweeps/lr_batch.py')
  assert len(study.runs) == 3 * 2 * 5 * 4
  cells = collections.defaultdict(set)
  for run in study.runs:
    o = run.overrides
    cells[(run.n_params, run.tokens)].add((o['lr'], o['batch_size']))
    assert o['batch_size'] * o['eval_batches'] == lr_batch.EVAL_WINDOWS
    assert run.tokens == o['steps'] * o['batch_size'] * lr_batch.SEQ_LEN
  assert sorted({t for _, t in cells}) == sorted(lr_batch.BATCHES)
  assert all(len(grid) == 20 for grid in cells.values())


def test_a_part_of_the_grid_and_a_wrong_argument():
  assert len(runspec.load('configs/sweeps/lr_batch.py:size=n5k,tokens=262144').runs) == 20
  with pytest.raises(ConfigError, match='size'):
    runspec.load('configs/sweeps/lr_batch.py:size=n9k')
