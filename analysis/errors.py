"""The one error type that the analysis entry points turn into a one-line message and exit 2."""


class InputError(ValueError):
  """Bad user input: the message says what is wrong and how to fix it."""
