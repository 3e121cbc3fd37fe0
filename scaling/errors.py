"""The one error type that the entry points turn into a one-line message and a non-zero exit."""


class ConfigError(ValueError):
  """Bad user input: the message names the field and the fix."""
