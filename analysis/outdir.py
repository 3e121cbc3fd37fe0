"""An output folder that is checked before the work and written all at once.

analysis.fit and the reproductions refuse an unwritable --out before any fitting, and write
their outputs so that a failure half-way leaves nothing a later reader could take for a result.
"""

import json
import os
import pathlib
import shutil
import tempfile

from analysis import errors


def write_json(path: pathlib.Path, obj: dict) -> None:
  tmp = path.with_suffix('.json.tmp')
  tmp.write_text(json.dumps(obj, indent=2) + '\n')
  os.replace(tmp, path)


def check_out(out: pathlib.Path) -> None:
  """Refuse an --out that cannot be written, before any fitting work."""
  if out.exists() and not out.is_dir():
    raise errors.InputError(f'--out={out} is a file: pass a folder')
  parent = out
  while not parent.exists():
    parent = parent.parent
  if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
    raise errors.InputError(f'--out={out} cannot be written ({parent} is not a writable folder): '
                            'pass a folder you can write')


class Staged:
  """Outputs written into a hidden folder inside `out`, moved in only when all of them are done
  (fit.json last); on failure the folder goes, and so does `out` if this created it."""

  def __init__(self, out: pathlib.Path):
    self.out, self.created = out, not out.exists()

  def __enter__(self) -> pathlib.Path:
    self.out.mkdir(parents=True, exist_ok=True)
    self.stage = pathlib.Path(tempfile.mkdtemp(prefix='.fit-', dir=self.out))
    return self.stage

  def __exit__(self, kind, *_):
    try:
      if kind is None:
        for stale in ('bootstrap.csv', 'backtest.csv'):  # from an earlier fit, not this one
          if not (self.stage / stale).exists():
            (self.out / stale).unlink(missing_ok=True)
        for f in sorted(self.stage.iterdir(), key=lambda p: p.name == 'fit.json'):
          os.replace(f, self.out / f.name)
    finally:
      shutil.rmtree(self.stage, ignore_errors=True)
      if kind is not None and self.created:
        shutil.rmtree(self.out, ignore_errors=True)
