"""JSON files that readers see whole or not at all: run metadata, sweep indexes, corpus manifests.

No JAX is imported here: the worker processes of `scaling.data.prepare` use it too.
"""

import json
import os


def write_json_atomic(path: str, obj: dict, indent: int = 2) -> None:
  tmp = f'{path}.tmp.{os.getpid()}'
  with open(tmp, 'w') as f:
    json.dump(obj, f, indent=indent, default=float)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)  # readers see the old or the new file, never half of one


def read_json(path: str, damaged_is_missing: bool = False) -> dict | None:
  """None when the file does not exist, or, with damaged_is_missing, cannot be parsed."""
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      return json.load(f)
  except ValueError:
    if damaged_is_missing:  # cut short by a crash before the atomic write existed: not done
      return None
    raise
