"""`python -m scaling.train` that also records the rows of every training batch this process loads.

  python tests/multiprocess_worker.py ROWS.jsonl --config=... --workdir=... [multi-process flags]

Each line of ROWS.jsonl is {"process", "step", "inputs"}: what this process fed the global batch.
"""

import json
import sys

from absl import app, flags

from scaling import train
from scaling.tasks import lm


def recording(make_data, path: str):
  """lm.make_data whose train_batch appends each batch's rows to `path`."""

  def make(c, process_index: int, process_count: int):
    data = make_data(c, process_index, process_count)
    train_batch = data.train_batch

    def record(step: int):
      batch = train_batch(step)
      with open(path, 'a') as f:
        f.write(json.dumps({'process': process_index, 'step': step,
                            'inputs': batch['inputs'].tolist()}) + '\n')
      return batch

    data.train_batch = record
    return data

  return make


if __name__ == '__main__':
  lm.make_data = recording(lm.make_data, sys.argv.pop(1))
  flags.mark_flag_as_required('config')
  app.run(train.main, flags_parser=train.parse_flags)
