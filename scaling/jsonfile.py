"""JSON files that readers see whole or not at all: run metadata, sweep indexes, corpus manifests.

No JAX is imported here: the worker processes of `scaling.data.prepare` use it too.
"""

import json
import os

from scaling.errors import ConfigError


def write_json_atomic(path: str, obj: dict, indent: int = 2) -> None:
  tmp = f'{path}.tmp.{os.getpid()}'
  try:
    with open(tmp, 'w') as f:
      json.dump(obj, f, indent=indent, default=float)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)  # readers see the old or the new file, never half of one
  finally:
    if os.path.exists(tmp):  # a full disk or an interrupt: leave no half-written file behind
      os.unlink(tmp)


def read_json(path: str, damaged_is_missing: bool = False,
              fix: str = 'restore it from a copy, or remove it') -> dict | None:
  """The JSON object in `path`; None when the file does not exist, or, with damaged_is_missing,
  cannot be parsed. Otherwise a file that is not a complete JSON object (cut short by a crash or
  a full disk, or edited) raises a ConfigError naming it and `fix`."""
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      obj = json.load(f)
    if not isinstance(obj, dict):
      raise ValueError(f'a JSON {type(obj).__name__}, not an object')
  except IsADirectoryError:
    raise ConfigError(f'{path}: a folder, where a JSON file belongs; move it out of the way, or '
                      'give another path') from None
  except (ValueError, UnicodeDecodeError) as e:
    if damaged_is_missing:  # cut short by a crash before the atomic write existed: not done
      return None
    why = str(e).splitlines()[0] if str(e) else type(e).__name__
    raise ConfigError(f'{path}: not a complete JSON object ({why}); it was cut short or edited: '
                      f'{fix}') from None
  return obj
