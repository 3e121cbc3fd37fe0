"""What the analysis command lines share: one-line argument errors and InputError -> exit 2."""

import argparse
import sys
from typing import Callable

from analysis import errors


class Parser(argparse.ArgumentParser):
  """argparse, but a bad argument is one line on stderr (no usage dump) and exit status 2."""

  def error(self, message: str):
    self.exit(2, f'{self.prog}: error: {message} (see --help)\n')


def run(main: Callable[[list[str] | None], None], argv: list[str] | None = None) -> None:
  try:
    main(argv)
  except errors.InputError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
