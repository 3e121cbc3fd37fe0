import gzip
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from configs import lm
from scaling.data import text, tfds_text
from scaling.errors import ConfigError
from scaling.tasks import lm as lm_task


def stdlib(process_index=0, process_count=1, seed=0, batch_size=8):
  c = lm.get_config('size=nano')
  c.update(dict(batch_size=batch_size, seed=seed, eval_batches=2))
  c.seq_len = 16
  return lm_task.make_data(c, process_index, process_count)


def test_stdlib_corpus_is_the_python_source_split_by_path():
  train, held_out, fingerprint, report = text.read_stdlib()
  assert report['skipped_binary'] == report['duplicates'] == 0  # the embedded bytes, unchanged
  assert 5e6 < len(train) + len(held_out) < 5e7
  assert 0.01 < len(held_out) / (len(train) + len(held_out)) < 0.15
  assert b'def ' in train[:100_000].tobytes()
  assert fingerprint == text.list_folder(text.stdlib_root(), ('.py',), unique=False).fingerprint


def test_batches_are_a_pure_function_of_seed_and_step():
  a, b = stdlib(), stdlib()
  np.testing.assert_array_equal(a.train_batch(3)['inputs'], b.train_batch(3)['inputs'])
  assert not np.array_equal(a.train_batch(3)['inputs'], a.train_batch(4)['inputs'])
  assert not np.array_equal(a.train_batch(3)['inputs'], stdlib(seed=1).train_batch(3)['inputs'])
  batch = a.train_batch(0)
  np.testing.assert_array_equal(batch['inputs'][:, 1:], batch['targets'][:, :-1])
  assert batch['inputs'].shape == (8, 16) and batch['inputs'].dtype == np.int32


def test_processes_load_disjoint_parts_of_the_global_batch():
  whole = stdlib().train_batch(5)['inputs']
  parts = [stdlib(p, 2).train_batch(5)['inputs'] for p in range(2)]
  np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_eval_batches_are_fixed_across_seeds():
  a, b = stdlib(seed=0).eval_batches(), stdlib(seed=7).eval_batches()
  assert len(a) == 2
  np.testing.assert_array_equal(a[1]['targets'], b[1]['targets'])


def test_any_folder_of_text(tmp_path):
  for i in range(60):
    (tmp_path / f'doc{i}.txt').write_text(f'document number {i} ' * 20)
  train, held_out, _, report = text.read_folder(str(tmp_path))
  assert len(train) > len(held_out) > 0
  assert train.tobytes().count(text.SEPARATOR) + held_out.tobytes().count(text.SEPARATOR) == 60
  assert report['files'] == 60 and report['bytes'] == len(train) + len(held_out) - 60


def messy_folder(root):
  """Text, binary files, a copy, a link, and text with a few bytes that are not UTF-8."""
  for i in range(40):
    (root / f'doc{i}.txt').write_text(f'document number {i} ' * 20)
  (root / 'archive.txt.gz').write_bytes(gzip.compress(b'compressed text ' * 100))
  (root / 'image.png').write_bytes(b'\x89PNG\r\n\x1a\n\0\0\0\rIHDR' + bytes(range(256)) * 4)
  (root / 'random.bin').write_bytes(np.random.default_rng(0).bytes(4096).replace(b'\0', b'x'))
  (root / 'latin1.md').write_bytes('caf\xe9 cr\xe8me '.encode('latin-1') + b'plain text ' * 30)
  (root / 'sub').mkdir()
  (root / 'sub' / 'copy.txt').write_bytes((root / 'doc3.txt').read_bytes())
  (root / 'sub' / 'link.txt').symlink_to(root / 'doc4.txt')
  return str(root)


def test_text_folders_keep_text_files_once_and_say_what_they_skipped(tmp_path):
  train, held_out, _, report = text.read_folder(messy_folder(tmp_path))
  assert report == dict(files=41, bytes=report['bytes'], skipped_binary=3, skipped_unreadable=0,
                        duplicates=2, non_utf8=1, skipped_special=0, skipped_unreadable_dirs=0)
  everything = train.tobytes() + held_out.tobytes()
  assert b'compressed' not in everything and b'PNG' not in everything
  assert everything.count(b'document number 3 ') == 20  # one copy only
  assert 'caf\xe9'.encode('latin-1') in everything  # kept, byte for byte


def test_special_files_and_unlistable_folders_are_skipped_and_counted(tmp_path, monkeypatch):
  root = messy_folder(tmp_path)
  os.mkfifo(tmp_path / 'pipe.txt')  # reading it would wait forever
  (tmp_path / 'dangling.txt').symlink_to(tmp_path / 'gone.txt')
  (tmp_path / 'locked').mkdir()
  (tmp_path / 'locked' / 'hidden.txt').write_text('never read ' * 10)
  scandir = os.scandir

  def refuse_locked(path='.'):  # root reads any folder, so the denial is staged
    if os.path.basename(str(path)) == 'locked':
      raise PermissionError(13, 'Permission denied', str(path))
    return scandir(path)

  monkeypatch.setattr(os, 'scandir', refuse_locked)
  listing = text.list_folder(root)
  assert listing.report['skipped_special'] == 1
  assert listing.report['skipped_unreadable_dirs'] == 1
  assert listing.report['skipped_unreadable'] == 1  # the dangling link
  assert listing.report['files'] == 41
  assert not any('hidden' in f.path or 'pipe' in f.path for f in listing.train + listing.eval)


def test_data_suffixes_restrict_the_files(tmp_path):
  root = messy_folder(tmp_path)
  c = lm.get_config('size=nano')
  c.dataset, c.data_suffixes, c.seq_len = f'textdir:{root}', '.txt,.md', 16
  report = lm_task.corpus(c)['source']['report']
  assert report['files'] == 41 and report['skipped_binary'] == 0  # .gz, .png, .bin not listed
  c.data_suffixes = '.md'
  with pytest.raises(ConfigError, match='has 1 text files .* drop data_suffixes=.md'):
    lm_task.corpus(c)


def test_train_and_eval_are_disjoint_by_file(tmp_path):
  root = messy_folder(tmp_path)
  listing = text.list_folder(root)
  train, held_out = {f.relpath for f in listing.train}, {f.relpath for f in listing.eval}
  assert train and held_out and not train & held_out
  assert not {f.sha256 for f in listing.train} & {f.sha256 for f in listing.eval}
  train_text, eval_text, _, _ = text.read_folder(root)
  for doc in eval_text.tobytes().split(text.SEPARATOR)[:-1]:
    assert doc not in train_text.tobytes().split(text.SEPARATOR)


def test_a_folder_too_small_for_one_window_names_the_sizes(tmp_path):
  for i in range(40):
    (tmp_path / f'doc{i}.txt').write_text(f'doc {i}')
  c = lm.get_config('size=nano')
  c.dataset, c.seq_len = f'textdir:{tmp_path}', 128
  with pytest.raises(ConfigError, match=r'the eval split of textdir:.* has \d+ bytes, too few for '
                                        r'one window of seq_len \+ 1 = 129'):
    lm_task.make_data(c, 0, 1)


@pytest.mark.parametrize('dataset,match', [('textdir:/no/such/folder', 'not a folder'),
                                           ('digits', 'not a text dataset')])
def test_bad_datasets_are_config_errors(dataset, match):
  c = lm.get_config('size=nano')
  c.dataset = dataset
  with pytest.raises(ConfigError, match=match):
    lm_task.make_data(c, 0, 1)


class TinyText(tfds.core.GeneratorBasedBuilder):
  """A text dataset built here, in array_record, without network or TensorFlow."""
  VERSION = tfds.core.Version('1.0.0')

  def _info(self):
    return tfds.core.DatasetInfo(builder=self,
                                 features=tfds.features.FeaturesDict({'text': tfds.features.Text()}))

  def _split_generators(self, dl_manager):
    return {'train': self._generate_examples(0, 40), 'validation': self._generate_examples(40, 50)}

  def _generate_examples(self, first, last):
    for i in range(first, last):
      yield i, {'text': f'line {i}: ' + 'xyz ' * (i % 7)}


def test_tfds_text_through_data_source(tmp_path):
  TinyText(data_dir=str(tmp_path), file_format='array_record').download_and_prepare()
  data = tfds_text.TfdsText('tiny_text', str(tmp_path), seq_len=32, batch_size=4, n_eval_batches=2,
                            seed=0)
  batch = data.train_batch(0)
  assert batch['inputs'].shape == (4, 32)
  assert b'line ' in bytes(batch['inputs'][0].astype(np.uint8))
  assert len(data.eval_batches()) == 2
  np.testing.assert_array_equal(data.train_batch(1)['targets'], data.train_batch(1)['targets'])


def test_unprepared_tfds_dataset_fails_fast(tmp_path):
  with pytest.raises(ConfigError, match='not prepared'):
    tfds_text.TfdsText('lm1b', str(tmp_path), seq_len=8, batch_size=2, n_eval_batches=1, seed=0)
