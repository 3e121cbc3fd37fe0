"""Image sources: digits, idx files, TFDS data sources (mocked), and the batch contract."""

import gzip
import hashlib
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from scaling.data import images, spec
from scaling.errors import ConfigError


def make_data(splits, levels, **overrides):
  kw = dict(batch_size=8, n_eval_batches=3, eval_grid=4, seed=0) | overrides
  return images.ImageData('test', splits, levels, **kw)


def write_idx(path: str, array: np.ndarray, compress: bool) -> None:
  header = bytes([0, 0, images.IDX_DTYPE, array.ndim]) + b''.join(
      d.to_bytes(4, 'big') for d in array.shape)
  with (gzip.open if compress else open)(path, 'wb') as f:
    f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def idx_folder(tmp_path):
  rng = np.random.default_rng(0)
  arrays = {'train': (rng.integers(0, 256, (20, 28, 28)), rng.integers(0, 10, 20)),
            'eval': (rng.integers(0, 256, (24, 28, 28)), rng.integers(0, 10, 24))}
  for split, (image_stem, label_stem) in images.IDX_FILES.items():
    write_idx(str(tmp_path / f'{image_stem}.gz'), arrays[split][0], compress=True)
    write_idx(str(tmp_path / label_stem), arrays[split][1], compress=False)
  return str(tmp_path), arrays


def test_digits_are_17_levels_scaled_to_minus_one_one():
  splits, levels = images.digits()
  assert levels == 17 and splits['train'][0].shape[1:] == (8, 8, 1)
  assert len(splits['train'][1]) + len(splits['eval'][1]) == 1797
  batch = make_data(splits, levels).train_batch(0)
  assert batch['image'].dtype == np.float32 and batch['label'].dtype == np.int32
  # pixel 0 -> -1, 8 -> 0, 16 -> 1
  assert batch['image'].min() == -1.0 and batch['image'].max() == 1.0
  pixels = np.unique(batch['image']) * 8 + 8
  np.testing.assert_allclose(pixels, np.round(pixels), atol=1e-5)


def test_idx_folder_reads_gzipped_and_plain_files_exactly(idx_folder):
  folder, arrays = idx_folder
  splits, levels = images.load(spec.parse(f'fashion_mnist_idx:{folder}', family='images'))
  assert levels == 256
  np.testing.assert_array_equal(splits['train'][0][..., 0], arrays['train'][0])
  np.testing.assert_array_equal(splits['eval'][1], arrays['eval'][1])
  data = make_data(splits, levels)
  x = data.train_batch(3)['image']
  assert x.shape == (8, 28, 28, 1) and -1.0 <= x.min() and x.max() <= 1.0


def test_missing_or_malformed_idx_files_are_config_errors(idx_folder, tmp_path):
  folder, _ = idx_folder
  with pytest.raises(ConfigError, match='is not a folder'):
    images.load(spec.parse(f'fashion_mnist_idx:{folder}/nope', family='images'))
  os.remove(os.path.join(folder, 't10k-labels-idx1-ubyte'))
  with pytest.raises(ConfigError, match='t10k-labels-idx1-ubyte'):
    images.load(spec.parse(f'fashion_mnist_idx:{folder}', family='images'))
  with open(os.path.join(folder, 't10k-labels-idx1-ubyte'), 'wb') as f:
    f.write(b'\x00\x00\x0d\x01' + bytes(8))
  with pytest.raises(ConfigError, match='not an idx file'):
    images.load(spec.parse(f'fashion_mnist_idx:{folder}', family='images'))


def test_batches_are_a_pure_function_of_seed_and_step():
  splits, levels = images.digits()
  a, b = make_data(splits, levels), make_data(splits, levels)
  np.testing.assert_array_equal(a.train_batch(5)['image'], b.train_batch(5)['image'])
  assert not np.array_equal(a.train_batch(5)['image'], a.train_batch(6)['image'])
  assert not np.array_equal(a.train_batch(5)['image'],
                            make_data(splits, levels, seed=1).train_batch(5)['image'])


def test_processes_load_their_contiguous_rows_of_the_global_batch():
  splits, levels = images.digits()
  whole = make_data(splits, levels)
  parts = [make_data(splits, levels, process_index=p, process_count=2) for p in range(2)]
  for key in ('image', 'label'):
    np.testing.assert_array_equal(np.concatenate([p.train_batch(7)[key] for p in parts]),
                                  whole.train_batch(7)[key])
  for key in ('image', 'eps', 'u'):
    np.testing.assert_array_equal(np.concatenate([p.eval_batches()[1][key] for p in parts]),
                                  whole.eval_batches()[1][key])


def test_eval_triples_ignore_the_seed_and_the_batch_size():
  splits, levels = images.digits()
  flat = lambda data, key: np.concatenate([b[key] for b in data.eval_batches()])
  a = make_data(splits, levels, batch_size=8, n_eval_batches=3)
  b = make_data(splits, levels, batch_size=4, n_eval_batches=6, seed=9)
  for key in ('image', 'label', 'eps', 'u', 'u_index'):
    np.testing.assert_array_equal(flat(a, key), flat(b, key))
  u = flat(a, 'u')
  np.testing.assert_allclose(np.unique(u), [0.125, 0.375, 0.625, 0.875])  # (k + 1/2) / 4
  assert np.all(np.bincount(flat(a, 'u_index')) == 6)


def test_train_and_eval_splits_are_disjoint_and_fingerprint_hashes_the_arrays():
  splits, levels = images.digits()
  train = {hashlib.sha256(x.tobytes()).digest() for x in splits['train'][0]}
  held_out = [hashlib.sha256(x.tobytes()).digest() for x in splits['eval'][0]]
  assert sum(h in train for h in held_out) < len(held_out) // 10  # digits has a few duplicates
  data = make_data(splits, levels)
  assert data.fingerprint == images.fingerprint([*splits['train'], *splits['eval']])
  splits['train'][0][0, 0, 0, 0] += 1
  assert make_data(splits, levels).fingerprint != data.fingerprint


def test_tfds_source_reads_images_and_labels_without_tensorflow():
  records = [{'image': np.full((28, 28, 1), i, np.uint8), 'label': i % 10} for i in range(12)]
  sources = {'train': records, 'test': records[:5]}
  with tfds.testing.mock_data(as_data_source_fn=lambda builder, split=None, **kw: sources):
    splits, levels = images.load(spec.parse('tfds:mnist', family='images'))
  assert levels == 256
  np.testing.assert_array_equal(splits['train'][0][:, 0, 0, 0], np.arange(12))
  np.testing.assert_array_equal(splits['eval'][1], np.arange(5))


def test_tfds_dataset_that_is_not_prepared_is_a_config_error_not_a_download(tmp_path):
  with pytest.raises(ConfigError, match='tfds:mnist'):
    images.load(spec.parse('tfds:mnist', family='images'), str(tmp_path))


def test_eval_examples_that_would_repeat_an_image_are_refused_with_how_many_fit():
  splits, levels = images.digits()  # 180 held-out images
  make_data(splits, levels, batch_size=16, n_eval_batches=11)  # 176
  with pytest.raises(ConfigError, match='eval_batches: 12 x batch_size 16 = 192 .* repeat the 180 '
                                        'held-out .* at most 11'):
    make_data(splits, levels, batch_size=16, n_eval_batches=12)


def test_text_dataset_names_are_config_errors():
  with pytest.raises(ConfigError, match='not an image dataset') as e:
    images.load(spec.parse('stdlib', family='images'))
  assert '\n' not in str(e.value)
