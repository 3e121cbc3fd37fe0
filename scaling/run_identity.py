"""What a run is bound to: its config and the inputs it reads (the corpus, the tokenizer, the data
split), and the changes a relaunch may make to them.

Both are kept in every checkpoint's meta, beside config.json and run.json's `inputs` that readers
use, so that a lost or edited config.json cannot change what a resumed run is. A relaunch is
compared with the newest checkpoint's record before anything is written (scaling.rundir).
"""

import numpy as np
from ml_collections import config_dict

from scaling import optim
from scaling.errors import ConfigError

# Fields a rerun may change: when to log, evaluate and checkpoint, and how devices are laid out.
# None of them changes what a step computes. `steps` may change too when the learning rate of
# every step already trained stays the same (check_changes).
MUTABLE = ('log_every', 'eval_every', 'checkpoint_every', 'keep_checkpoints', 'peak_flops',
           'mesh.data', 'mesh.fsdp', 'mesh.tensor')
# Where the data lives: it may change when the inputs read there are the same (a corpus moved to
# another disk), never otherwise.
MOVABLE = ('dataset', 'data_dir')
# The parts of `inputs` (scaling.data.Data.inputs) that must not change under a run.
BOUND = ('fingerprint', 'tokenizer', 'split')


def flat(d: dict, prefix: str = '') -> dict:
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out |= flat(v, f'{prefix}{k}.')
    else:
      out[f'{prefix}{k}'] = v
  return out


def config_changes(stored: dict, new: dict) -> dict[str, list]:
  """{field: [stored, new]} for the fields both configs have and that differ. A field only one
  has comes from another version of the code, not from the user, and is not a change."""
  a, b = flat(stored), flat(new)
  return {k: [a[k], b[k]] for k in sorted(a.keys() & b.keys()) if a[k] != b[k]}


def input_changes(stored: dict, new: dict) -> dict[str, list]:
  """{part: [stored, new]} for each bound part of the inputs that differs. What the record does
  not hold is not compared: a run recorded before inputs existed has only its dataset's
  fingerprint (run.json's `dataset`), and a manifest written before split rules were recorded
  has none (None)."""
  a, b = flat({k: stored[k] for k in BOUND if k in stored}), flat({k: new[k] for k in BOUND})
  return {k: [a[k], b.get(k)] for k in sorted(a) if a[k] is not None and a[k] != b.get(k)}


def _short(value) -> str:
  return f'{value[:12]}...' if isinstance(value, str) and len(value) > 16 else repr(value)


def check_inputs(changes: dict, dataset: str, step: int) -> None:
  if changes:
    shown = ', '.join(f'{k} {_short(a)} -> {_short(b)}' for k, (a, b) in changes.items())
    raise ConfigError(f'dataset: the data of {dataset} is not what this workdir trained on up to '
                      f'step {step} ({shown}); put back the data it was trained on, or fork a new '
                      'run with --config.init_from=WORKDIR --config.init_step=STEP')


def check_changes(changes: dict, stored: dict, c: config_dict.ConfigDict, trained: int) -> None:
  """Refuses a change outside MUTABLE and MOVABLE (the inputs were compared before), or of
  `steps` that alters the lr of a trained step."""
  refused = [k for k in changes if k not in MUTABLE + MOVABLE and k != 'steps']
  if refused:
    shown = ', '.join(f'{k} ({changes[k][0]!r} -> {changes[k][1]!r})' for k in refused)
    raise ConfigError(f'config: this workdir was trained with other values of {shown}; rerun '
                      'with the values it was trained with (config.json; its checkpoints keep a '
                      'copy), or fork a new run with --config.init_from=WORKDIR '
                      '--config.init_step=STEP')
  if 'steps' in changes:
    if c.steps < trained:
      raise ConfigError(f'steps: {c.steps} is below the {trained} steps this workdir has already '
                        'trained; give at least that many')
    old, new = optim.schedule(config_dict.ConfigDict(stored)), optim.schedule(c)
    s = np.arange(trained)
    if not np.array_equal(np.asarray(old(s)), np.asarray(new(s))):
      raise ConfigError(f'steps: changing it from {changes["steps"][0]} to {c.steps} changes the '
                        f'{c.schedule} learning rate of steps already trained (0-{trained - 1}); '
                        'keep it, or fork with init_from (schedule=constant or wsd can be extended '
                        'until their decay starts)')
