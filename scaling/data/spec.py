"""The `dataset` field, parsed once into a typed value that every reader of it uses.

  stdlib                   the Python standard library's source (the LM's embedded default)
  textdir:/path            a folder of text files, read whole (scaling.data.text)
  tokens:DIR               a folder prepared by `python -m scaling.data.prepare` (memory-mapped)
  tfds:NAME                a prepared TFDS dataset, text or images (never downloaded)
  digits                   scikit-learn's 8x8 digits (the DiT's embedded default)
  fashion_mnist_idx:/path  Fashion-MNIST or MNIST idx files
"""

import dataclasses
import os

from scaling.errors import ConfigError

EMBEDDED = ('stdlib', 'digits')  # no argument
FOLDERS = ('textdir', 'tokens', 'fashion_mnist_idx')  # the argument is a folder
NAMED = ('tfds',)  # the argument is a name
# family: (kinds, what one is called, how to write them)
FAMILIES = {
    'text': (('stdlib', 'textdir', 'tokens', 'tfds'), 'text dataset',
             'stdlib, textdir:/path/to/folder, tfds:NAME (e.g. tfds:lm1b) or tokens:DIR (prepared)'),
    'images': (('digits', 'fashion_mnist_idx', 'tfds'), 'image dataset',
               'digits, fashion_mnist_idx:/path/to/folder or tfds:NAME (e.g. tfds:mnist)'),
    'text source': (('stdlib', 'textdir', 'tfds'), 'text source',  # what prepare reads
                    'stdlib, textdir:/path/to/folder or tfds:NAME'),
}


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  kind: str  # one of EMBEDDED, FOLDERS or NAMED
  arg: str = ''  # the folder or the TFDS name; '' for an embedded dataset

  @property
  def folder(self) -> str | None:
    return self.arg if self.kind in FOLDERS else None

  def __str__(self) -> str:
    return f'{self.kind}:{self.arg}' if self.arg else self.kind


def parse(text: str, field: str = 'dataset', family: str | None = None) -> DatasetSpec:
  """`text` as a DatasetSpec; `family` (a key of FAMILIES) restricts the kinds to its own."""
  kind, sep, arg = text.partition(':')
  if family is None:
    kinds, noun = EMBEDDED + FOLDERS + NAMED, 'known dataset'
    usage = f'{FAMILIES["text"][2]}; or {FAMILIES["images"][2]}'
  else:
    kinds, noun, usage = FAMILIES[family]
  if kind not in kinds or (kind in EMBEDDED) == bool(sep) or (sep and not arg):
    article = 'an' if noun[0] in 'aeiou' else 'a'
    raise ConfigError(f'{field}: {text!r} is not {article} {noun}; use {usage}')
  return DatasetSpec(kind, arg)


def check_folder(spec: DatasetSpec, field: str = 'dataset') -> None:
  """One line when the folder a spec names does not exist: before any run directory is made."""
  if spec.folder is not None and not os.path.isdir(spec.folder):
    raise ConfigError(f'{field}: {spec.folder!r} (from {str(spec)!r}) is not a folder; give an '
                      f'existing folder after {spec.kind}:')
