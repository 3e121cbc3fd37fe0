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
  train, held_out, fingerprint = text.read_folder(text.stdlib_root(), suffixes=('.py',))
  assert 5e6 < len(train) + len(held_out) < 5e7
  assert 0.01 < len(held_out) / (len(train) + len(held_out)) < 0.15
  assert b'def ' in train[:100_000].tobytes()
  assert fingerprint == text.read_folder(text.stdlib_root(), suffixes=('.py',))[2]


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
  train, held_out, _ = text.read_folder(str(tmp_path))
  assert len(train) > len(held_out) > 0
  assert train.tobytes().count(text.SEPARATOR) + held_out.tobytes().count(text.SEPARATOR) == 60


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
