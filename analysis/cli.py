"""What the command lines share: one-line argument errors, one-line warnings, InputError -> exit 2."""

import argparse
import sys
import warnings
from typing import Callable

from analysis import errors


class Parser(argparse.ArgumentParser):
  """argparse, but a bad argument is one line on stderr (no usage dump) and exit status 2."""

  def error(self, message: str):
    self.exit(2, f'{self.prog}: error: {message} (see --help)\n')


def warn(message: str) -> None:
  print(f'warning: {message}', file=sys.stderr)


def run(main: Callable[[list[str] | None], None], argv: list[str] | None = None) -> None:
  """main(argv), with the library's warnings as one line each and bad input as one error line."""
  with warnings.catch_warnings():
    warnings.simplefilter('default')
    warnings.showwarning = lambda message, *_, **__: warn(str(message))
    try:
      main(argv)
    except errors.InputError as e:
      print(f'error: {e}', file=sys.stderr)
      sys.exit(2)
