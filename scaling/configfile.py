"""Config and sweep files by path, in a checkout or in the installed package.

`configs/lm.py` names a file relative to where the command runs. When there is none, it names the
copy shipped with the code: the checkout's `configs/`, or the wheel's `scaling/configs/` (setup.py
ships the folder there; scaling/__init__.py makes it importable as `configs`, which the config
files import).
"""

import importlib.util
import os

from scaling.errors import ConfigError

_HERE = os.path.dirname(os.path.abspath(__file__))
SHIPPED = next((d for d in (os.path.join(_HERE, 'configs'),  # the wheel
                            os.path.join(os.path.dirname(_HERE), 'configs'))  # a checkout
                if os.path.isfile(os.path.join(d, 'common.py'))), None)


def resolve(path: str, what: str, base: str | None = None) -> str:
  """The file `path` names (against `base` when relative and given, else the working folder), or
  the shipped copy of `configs/...`; checked to be Python that parses."""
  candidates = [path if base is None or os.path.isabs(path) else os.path.join(base, path)]
  parts = os.path.normpath(path).split(os.sep)
  if not os.path.isabs(path) and parts[0] == 'configs' and SHIPPED is not None:
    candidates.append(os.path.join(SHIPPED, *parts[1:]))
  found = next((p for p in candidates if os.path.isfile(p)), None)
  if found is None:
    raise ConfigError(f'{what}: no file {path!r}; give a config file such as configs/lm.py '
                      '(relative to the working folder or the repository, or absolute)')
  with open(found, 'rb') as f:
    source = f.read()
  try:
    compile(source, found, 'exec')
  except SyntaxError as e:
    raise ConfigError(f'{what}: {found}:{e.lineno}: {e.msg}; fix the syntax there') from e
  return found


def import_file(path: str, what: str, base: str | None = None):
  """The module in file `path` (see resolve), executed; errors at import time are one line."""
  found = resolve(path, what, base)
  spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(found))[0], found)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
  except (ImportError, NameError, ValueError, TypeError) as e:
    raise ConfigError(f'{what}: importing {found} failed ({type(e).__name__}: {e}); fix the '
                      'file') from e
  return module


def resolve_flag(argv: list[str], flag: str = '--config') -> list[str]:
  """argv with `--config=PATH[:ARG]` pointing at the resolved file (see resolve)."""
  out = []
  for arg in argv:
    if arg.startswith(f'{flag}='):
      path, sep, rest = arg[len(flag) + 1:].partition(':')
      arg = f'{flag}={resolve(path, flag)}{sep}{rest}'
    out.append(arg)
  return out
