"""Tokenizers: `byte` (vocab 256, the embedded default's) and `sentencepiece` (BPE or unigram).

Both are lossless on bytes, so bits per byte can be counted exactly from token ids:
- byte: a token is a byte; documents are separated by byte 0, as in scaling.data.text.
- sentencepiece: trained with identity normalization, no dummy prefix and byte fallback, so
  decoding gives back the input bytes. Bytes that are not UTF-8 (which sentencepiece would turn
  into U+FFFD) are encoded as their byte-fallback pieces. Documents are separated by `</s>`.

`bytes_per_token()` is the table of UTF-8 bytes each id decodes to (a separator counts one byte,
like the byte path's 0), from which every eval logs bits per byte whatever the tokenizer.

Spec strings, as given to `python -m scaling.data.prepare --tokenizer=...`:
  byte
  sentencepiece:vocab=8192[,type=bpe|unigram][,sample_mb=64]   trained on a sample of train text
  sentencepiece:model=PATH                                     an existing .model file
"""

import dataclasses
import hashlib
import io
import os
from typing import Iterable, Iterator, Protocol

import numpy as np

from scaling.errors import ConfigError

TYPES = ('unigram', 'bpe')  # unigram is sentencepiece's own default
DEFAULT_SAMPLE_MB = 64  # text read to train a sentencepiece model; bounds its memory and time
SENTENCE_CHARS = 1024  # sentencepiece skips sentences over max_sentence_length (4192 bytes)
MIN_VOCAB = 260  # 256 byte pieces + <unk> + </s> + a few merges


class Tokenizer(Protocol):
  name: str  # 'byte' or 'sentencepiece'
  vocab_size: int
  separator: int  # the id between documents

  def encode(self, data: bytes) -> np.ndarray:
    """Token ids of one piece of a document (any bytes)."""

  def decode(self, ids: Iterable[int]) -> bytes:
    """The bytes the ids stand for (a separator decodes to b'\\0', as in the byte path)."""

  def bytes_per_token(self) -> np.ndarray:
    """[vocab_size] UTF-8 bytes each id stands for."""

  def describe(self) -> dict:
    """What manifest.json records: name, vocab_size, type, sha256 of the model file."""


@dataclasses.dataclass(frozen=True)
class Spec:
  """A parsed --tokenizer string."""
  name: str
  vocab: int = 0
  type: str = 'unigram'
  sample_mb: float = DEFAULT_SAMPLE_MB
  model: str = ''


def parse(spec: str) -> Spec:
  name, _, arg = spec.partition(':')
  if name == 'byte' and not arg:
    return Spec('byte')
  if name != 'sentencepiece':
    raise ConfigError(f'--tokenizer: unknown {spec!r}; use byte, sentencepiece:vocab=8192[,type=bpe]'
                      ' or sentencepiece:model=PATH')
  fields = {}
  for kv in filter(None, arg.split(',')):
    key, sep, value = kv.partition('=')
    if not sep or key not in ('vocab', 'type', 'sample_mb', 'model'):
      raise ConfigError(f'--tokenizer: {kv!r} is not one of vocab=N, type=bpe|unigram, '
                        'sample_mb=MB, model=PATH')
    fields[key] = value
  if 'model' in fields:
    if len(fields) > 1:
      raise ConfigError('--tokenizer: model=PATH loads a trained model; drop vocab, type, sample_mb')
    if not os.path.isfile(fields['model']):
      raise ConfigError(f'--tokenizer: no sentencepiece model at {fields["model"]}; give the path of '
                        'a .model file')
    return Spec('sentencepiece', model=fields['model'])
  try:
    vocab, sample_mb = int(fields.get('vocab', '')), float(fields.get('sample_mb', DEFAULT_SAMPLE_MB))
  except ValueError:
    raise ConfigError(f'--tokenizer: {spec!r} needs an integer vocab=N (e.g. vocab=8192) and a '
                      'number sample_mb=MB') from None
  if vocab < MIN_VOCAB or vocab > 2**31 - 1:
    raise ConfigError(f'--tokenizer: vocab={vocab} must be at least {MIN_VOCAB} (256 byte pieces '
                      'plus merges)')
  if fields.get('type', 'unigram') not in TYPES:
    raise ConfigError(f'--tokenizer: type={fields["type"]} is not one of {", ".join(TYPES)}')
  if sample_mb <= 0:
    raise ConfigError(f'--tokenizer: sample_mb={sample_mb} must be positive')
  return Spec('sentencepiece', vocab=vocab, type=fields.get('type', 'unigram'), sample_mb=sample_mb)


class ByteTokenizer:
  name, vocab_size, separator = 'byte', 256, 0

  def encode(self, data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8)

  def decode(self, ids: Iterable[int]) -> bytes:
    return bytes(np.asarray(ids, dtype=np.uint8))

  def bytes_per_token(self) -> np.ndarray:
    return np.ones(self.vocab_size, dtype=np.int32)

  def describe(self) -> dict:
    return {'name': self.name, 'vocab_size': self.vocab_size, 'sha256': None}


class SentencePieceTokenizer:
  name = 'sentencepiece'

  def __init__(self, model_proto: bytes):
    import sentencepiece as spm
    self.proto = model_proto
    self.sp = spm.SentencePieceProcessor(model_proto=model_proto)
    self.vocab_size = self.sp.vocab_size()
    self.separator = self.sp.eos_id()
    self.byte_ids = np.array([self.sp.piece_to_id(f'<0x{b:02X}>') for b in range(256)])
    if self.separator < 0 or not all(self.sp.is_byte(int(i)) for i in self.byte_ids):
      raise ConfigError('--tokenizer: the sentencepiece model needs an eos piece and byte_fallback; '
                        'train one with sentencepiece:vocab=N')
    self.pieces = [self._piece_bytes(i) for i in range(self.vocab_size)]

  def _piece_bytes(self, i: int) -> bytes:
    if i == self.separator:
      return b'\0'
    if self.sp.is_byte(i):
      return bytes([int(self.sp.id_to_piece(i)[3:5], 16)])  # '<0xAB>'
    if self.sp.is_control(i) or self.sp.is_unknown(i):
      return b''
    return self.sp.id_to_piece(i).replace('\u2581', ' ').encode()

  def encode(self, data: bytes) -> np.ndarray:
    # Text is encoded in runs of whole lines (_sentences): sentencepiece's BPE slows down on long
    # inputs, and its pieces rarely span a newline (on the benchmark corpus the counts are equal).
    ids = []
    for piece, valid in _utf8_runs(data):
      if valid:
        ids += [i for line in self.sp.encode(list(_sentences(piece.decode()))) for i in line]
      else:
        ids += self.byte_ids[list(piece)].tolist()
    return np.asarray(ids, dtype=np.int64)

  def decode(self, ids: Iterable[int]) -> bytes:
    return b''.join(self.pieces[int(i)] for i in ids)

  def bytes_per_token(self) -> np.ndarray:
    return np.array([len(p) for p in self.pieces], dtype=np.int32)

  def describe(self) -> dict:
    import sentencepiece.sentencepiece_model_pb2 as pb
    model = pb.ModelProto.FromString(self.proto)
    return {'name': self.name, 'vocab_size': self.vocab_size,
            'type': pb.TrainerSpec.ModelType.Name(model.trainer_spec.model_type).lower(),
            'sha256': hashlib.sha256(self.proto).hexdigest()}


def _utf8_runs(data: bytes) -> Iterator[tuple[bytes, bool]]:
  """Maximal runs of valid UTF-8 (True) and of bytes that are not (False)."""
  while data:
    try:
      data.decode()
      yield data, True
      return
    except UnicodeDecodeError as e:
      if e.start:
        yield data[:e.start], True
      yield data[e.start:e.end], False
      data = data[e.end:]


def train_sentencepiece(spec: Spec, texts: Iterable[bytes], num_threads: int) -> bytes:
  """A lossless model (see the module docstring) trained on up to spec.sample_mb of `texts`."""
  import sentencepiece as spm
  budget = int(spec.sample_mb * 2**20)

  def sentences() -> Iterator[str]:
    nonlocal budget
    for text in texts:
      for chunk in _sentences(text.decode(errors='ignore')):
        budget -= len(chunk)
        if budget < 0:
          return
        yield chunk

  proto = io.BytesIO()
  try:
    spm.SentencePieceTrainer.train(
        sentence_iterator=sentences(), model_writer=proto, vocab_size=spec.vocab,
        model_type=spec.type, byte_fallback=True, normalization_rule_name='identity',
        add_dummy_prefix=False, remove_extra_whitespaces=False, allow_whitespace_only_pieces=True,
        split_digits=True, character_coverage=0.9995, unk_id=0, eos_id=1, bos_id=-1, pad_id=-1,
        num_threads=num_threads, minloglevel=2)
  except RuntimeError as e:  # e.g. "Vocabulary size is too high (8192). Please set it to a value <= 1234."
    raise ConfigError(f'--tokenizer: sentencepiece cannot train vocab={spec.vocab} on this sample: '
                      f'{str(e).splitlines()[-1].strip()}; lower vocab or give more text') from None
  return proto.getvalue()


def _sentences(text: str) -> Iterator[str]:
  """Runs of whole lines of up to SENTENCE_CHARS characters (a longer line is cut), so that
  pieces can learn '\\n' too; a character is at most 4 bytes, within max_sentence_length."""
  start = 0
  while start < len(text):
    end = text.rfind('\n', start, start + SENTENCE_CHARS) + 1
    end = end if end > start else start + SENTENCE_CHARS
    yield text[start:end]
    start = end


def load(spec: str | Spec) -> Tokenizer:
  """A tokenizer that exists already: byte, or sentencepiece:model=PATH."""
  spec = parse(spec) if isinstance(spec, str) else spec
  if spec.name == 'byte':
    return ByteTokenizer()
  if not spec.model:
    raise ConfigError('--tokenizer: a sentencepiece tokenizer to train has no model yet')
  with open(spec.model, 'rb') as f:
    return from_proto(f.read())


def from_proto(proto: bytes) -> SentencePieceTokenizer:
  try:
    return SentencePieceTokenizer(proto)
  except (RuntimeError, OSError) as e:
    raise ConfigError(f'--tokenizer: not a sentencepiece model ({e}); give a .model file') from None


def sha256_file(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()
