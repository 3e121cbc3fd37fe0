"""Labelled images: scikit-learn's 8x8 digits (the embedded default), Fashion-MNIST idx files from
a folder, or a prepared TFDS image dataset read through `tfds.data_source` (no TensorFlow).

Pixels are integers 0..levels-1 mapped evenly onto [-1, 1] (digits have 17 levels, 0..16; the
others 256) as NHWC float32; labels are int32. A training batch is a pure function of
(seed, step). Eval example j is fixed whatever the seed or batch size: the j-th image of a fixed
shuffle of the held-out split, fixed noise `eps`, and position `u` on an evenly spaced grid of
`eval_grid` log-SNR levels (`u_index` = j mod eval_grid), so every run is scored on the same
(x, logsnr, eps) triples.
"""

import gzip
import hashlib
import os

import numpy as np

from scaling.data import Batch, describe_inputs, process_rows, spec
from scaling.data.tfds_text import open_splits
from scaling.errors import ConfigError

SPLIT_RULE = "the dataset's own train and test splits"
SPLIT_RULES = {'digits': 'every tenth image to eval'}
EVAL_SEED = 20240  # eval order and noise: fixed, not the config seed
IDX_FILES = {'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
             'eval': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')}
IDX_DTYPE = 0x08  # unsigned byte, the only element type image idx files use


class ImageData:
  """Random-access image batches, host-sharded by rows of the global batch."""

  def __init__(self, name: str, splits: dict[str, tuple[np.ndarray, np.ndarray]], levels: int,
               *, batch_size: int, n_eval_batches: int, eval_grid: int, seed: int,
               process_index: int = 0, process_count: int = 1):
    self.train_NxHxWxC, self.train_label_N = splits['train']
    eval_NxHxWxC, eval_label_N = splits['eval']
    order = np.random.default_rng(EVAL_SEED).permutation(len(eval_label_N))
    self.eval_NxHxWxC, self.eval_label_N = eval_NxHxWxC[order], eval_label_N[order]
    self.name, self.levels = name, levels
    self.image_shape = self.train_NxHxWxC.shape[1:]
    self.num_classes = int(max(self.train_label_N.max(), eval_label_N.max())) + 1
    self.batch_size, self.n_eval_batches, self.eval_grid, self.seed = (
        batch_size, n_eval_batches, eval_grid, seed)
    self.rows = process_rows(batch_size, process_index, process_count)
    self.fingerprint = fingerprint([a for split in ('train', 'eval') for a in splits[split]])
    n_eval = n_eval_batches * batch_size
    if n_eval > len(eval_label_N):  # an image scored twice: its rows would not be independent
      raise ConfigError(f'eval_batches: {n_eval_batches} x batch_size {batch_size} = {n_eval} eval '
                        f'examples would repeat the {len(eval_label_N)} held-out images of {name}; '
                        f'give eval_batches at most {max(1, len(eval_label_N) // batch_size)}')
    self.inputs = describe_inputs(name, self.fingerprint, None, len(self.train_label_N),
                                  len(eval_label_N), 'images', SPLIT_RULES.get(name, SPLIT_RULE))

  def _scale(self, pixels: np.ndarray) -> np.ndarray:
    return (pixels.astype(np.float32) * (2.0 / (self.levels - 1)) - 1.0).astype(np.float32)

  def train_batch(self, step: int) -> Batch:
    index_B = np.random.default_rng([self.seed, step]).integers(0, len(self.train_label_N),
                                                                self.batch_size)[self.rows]
    return {'image': self._scale(self.train_NxHxWxC[index_B]),
            'label': self.train_label_N[index_B].astype(np.int32)}

  def _eval_batch(self, example_B: np.ndarray) -> Batch:
    index_B = example_B % len(self.eval_label_N)
    eps = [np.random.default_rng([EVAL_SEED, j]).standard_normal(self.image_shape)
           for j in example_B]
    u_index_B = example_B % self.eval_grid
    return {'image': self._scale(self.eval_NxHxWxC[index_B]),
            'label': self.eval_label_N[index_B].astype(np.int32),
            'eps': np.stack(eps).astype(np.float32),
            'u': ((u_index_B + 0.5) / self.eval_grid).astype(np.float32),
            'u_index': u_index_B.astype(np.int32)}

  def eval_batches(self) -> list[Batch]:
    examples = np.arange(self.n_eval_batches * self.batch_size).reshape(self.n_eval_batches, -1)
    return [self._eval_batch(example_B[self.rows]) for example_B in examples]


def fingerprint(arrays: list[np.ndarray]) -> str:
  h = hashlib.sha256()
  for a in arrays:
    h.update(str((a.dtype.str, a.shape)).encode())
    h.update(np.ascontiguousarray(a).tobytes())
  return h.hexdigest()


def digits() -> tuple[dict, int]:
  """scikit-learn's bundled 1797 8x8 digits, 17 grey levels; every tenth image is held out."""
  from sklearn import datasets  # only for runs that read digits
  bunch = datasets.load_digits()
  pixels = bunch.images.astype(np.uint8)[..., None]
  labels = bunch.target.astype(np.int32)
  held_out = np.arange(len(labels)) % 10 == 0
  return {'train': (pixels[~held_out], labels[~held_out]),
          'eval': (pixels[held_out], labels[held_out])}, 17


def _read_idx(folder: str, stem: str, ndim: int) -> np.ndarray:
  path = next((os.path.join(folder, stem + ext) for ext in ('', '.gz')
               if os.path.exists(os.path.join(folder, stem + ext))), None)
  if path is None:
    raise ConfigError(f'dataset: {stem}[.gz] is missing from {folder!r}; give '
                      'fashion_mnist_idx:/folder/with/the/four/idx/files')
  with (gzip.open if path.endswith('.gz') else open)(path, 'rb') as f:
    raw = f.read()
  if raw[:4] != bytes([0, 0, IDX_DTYPE, ndim]):
    raise ConfigError(f'dataset: {path!r} is not an idx file of {ndim}-D unsigned bytes')
  shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim))
  return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def idx_folder(folder: str) -> tuple[dict, int]:
  """Fashion-MNIST (or MNIST) idx files, as Debian's dataset-fashion-mnist installs them in
  /usr/share/datasets/fashion-mnist; the t10k files are the held-out split."""
  if not os.path.isdir(folder):
    raise ConfigError(f'dataset: {folder!r} is not a folder; '
                      'give fashion_mnist_idx:/path/to/folder')
  splits = {split: (_read_idx(folder, images, 3)[..., None],
                    _read_idx(folder, labels, 1).astype(np.int32))
            for split, (images, labels) in IDX_FILES.items()}
  return splits, 256


def _records(source) -> tuple[np.ndarray, np.ndarray]:
  records = [source[i] for i in range(len(source))]
  return (np.stack([r['image'] for r in records]).astype(np.uint8),
          np.array([r['label'] for r in records], np.int32))


def tfds_images(name: str, data_dir: str | None) -> tuple[dict, int]:
  """A prepared TFDS image dataset's train and held-out splits, read whole; never downloaded."""
  train, held_out = open_splits(name, data_dir)
  if not {'image', 'label'} <= set(train[0]):
    raise ConfigError(f'dataset: tfds:{name} has no image and label features; the diffusion '
                      'task needs an image dataset such as tfds:mnist')
  return {'train': _records(train), 'eval': _records(held_out)}, 256


def load(dataset: spec.DatasetSpec, data_dir: str | None = None) -> tuple[dict, int]:
  """({'train': (pixels_NxHxWxC, labels_N), 'eval': ...}, levels) for a parsed dataset field."""
  if dataset.kind == 'digits':
    return digits()
  if dataset.kind == 'fashion_mnist_idx':
    return idx_folder(dataset.arg)
  return tfds_images(dataset.arg, data_dir)
