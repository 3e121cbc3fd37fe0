"""Prepared token folders: tokenizers, scaling.data.prepare, sampling without replacement, the epoch
guard, and a sentencepiece corpus trained on end to end."""

import ast
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from configs import lm
from scaling.data import prepare, text, tokens
from scaling.data import tokenizer as tokenizers
from scaling.errors import ConfigError
from scaling.tasks import lm as lm_task

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORDS = ('alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho '
         'sigma tau upsilon phi chi psi omega def return class import self value index').split()


def write_corpus(root, n_files=60, words=400, seed=0):
  """A folder of text files of pseudo-random words and a few odd bytes, a few MB at most."""
  rng = np.random.default_rng(seed)
  os.makedirs(root, exist_ok=True)
  for i in range(n_files):
    lines = [' '.join(rng.choice(WORDS, 12)) for _ in range(words // 12)]
    with open(os.path.join(root, f'doc{i:03d}.txt'), 'w') as f:
      f.write(f'document {i}\n' + '\n'.join(lines) + '\n')
  with open(os.path.join(root, 'latin1.txt'), 'wb') as f:  # text with bytes that are not UTF-8
    f.write('caf\xe9 na\xefve d\xe9j\xe0 vu\n'.encode('latin-1') + b'plain words here\n' * 40)
  return str(root)


@pytest.fixture(scope='module')
def sp_dir(tmp_path_factory):
  src = write_corpus(tmp_path_factory.mktemp('src'), n_files=120, words=2000)
  out = str(tmp_path_factory.mktemp('prepared') / 'sp')
  prepare.prepare(f'textdir:{src}', 'sentencepiece:vocab=512,type=bpe', out, workers=2,
                  shard_mb=0.1, progress=False)
  return src, out


def shard_tokens(out, split):
  m = tokens.read_manifest(out)
  return np.concatenate([np.fromfile(os.path.join(out, s['file']), dtype=m['dtype'])
                         for s in m['splits'][split]['shards']])


# ----------------------------------------------------------------------------------------------
# The keyed bijection and sampling without replacement.
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize('n', [1, 2, 3, 7, 64, 1000, 4097])
def test_permute_is_a_bijection_of_0_to_n(n):
  keys = tokens.feistel_keys(3, 0)
  image = tokens.permute(np.arange(n), n, keys)
  np.testing.assert_array_equal(np.sort(image), np.arange(n))
  if n >= 64:  # a different key gives a different order, not the identity
    assert not np.array_equal(image, np.arange(n))
    assert not np.array_equal(image, tokens.permute(np.arange(n), n, tokens.feistel_keys(3, 1)))


def windows(out, seq_len=16, batch_size=8, seed=0, process_index=0, process_count=1):
  return tokens.TokenWindows(out, seq_len=seq_len, batch_size=batch_size, n_eval_batches=2,
                             seed=seed, process_index=process_index, process_count=process_count)


def test_no_window_repeats_within_an_epoch_and_epochs_differ(sp_dir):
  data = windows(sp_dir[1], batch_size=96)  # 96 does not divide n: a batch spans two epochs
  n = data.n_windows
  steps_per_epoch = -(-n // data.batch_size)
  ids = np.concatenate([data.window_ids(s) for s in range(2 * steps_per_epoch)])
  first, second = ids[:n], ids[n:2 * n]
  np.testing.assert_array_equal(np.sort(first), np.arange(n))  # every window once
  np.testing.assert_array_equal(np.sort(second), np.arange(n))
  assert not np.array_equal(first, second)
  # window w of the batch is tokens [w L, w L + L + 1) of the train split
  train = shard_tokens(sp_dir[1], 'train')
  batch = data.train_batch(5)
  for row, w in zip(batch['inputs'], data.window_ids(5)):
    np.testing.assert_array_equal(row, train[w * 16:w * 16 + 16])
  np.testing.assert_array_equal(batch['inputs'][:, 1:], batch['targets'][:, :-1])


def test_a_batch_is_a_pure_function_of_seed_and_step_so_resume_is_exact(sp_dir):
  a, b = windows(sp_dir[1]), windows(sp_dir[1])  # b: a fresh process resuming at step 7
  np.testing.assert_array_equal(a.train_batch(7)['inputs'], b.train_batch(7)['inputs'])
  assert not np.array_equal(a.train_batch(7)['inputs'], windows(sp_dir[1], seed=1).train_batch(7)['inputs'])
  whole = a.train_batch(3)['targets']
  parts = [windows(sp_dir[1], process_index=p, process_count=2).train_batch(3)['targets']
           for p in range(2)]
  np.testing.assert_array_equal(np.concatenate(parts), whole)
  evals = [windows(sp_dir[1], process_index=p, process_count=2).eval_batches()[1] for p in range(2)]
  np.testing.assert_array_equal(np.concatenate([e['inputs'] for e in evals]),
                                a.eval_batches()[1]['inputs'])


# ----------------------------------------------------------------------------------------------
# prepare: shards, manifest, tokenizers, resume.
# ----------------------------------------------------------------------------------------------
def test_byte_prepare_holds_exactly_the_bytes_of_the_in_memory_path(tmp_path):
  src = write_corpus(tmp_path / 'src', n_files=40)
  out = str(tmp_path / 'bytes')
  m = prepare.prepare(f'textdir:{src}', 'byte', out, workers=1, shard_mb=0.02, progress=False)
  train, held_out, fingerprint, _ = text.read_folder(src)
  np.testing.assert_array_equal(shard_tokens(out, 'train'), train)
  np.testing.assert_array_equal(shard_tokens(out, 'eval'), held_out)
  assert len(m['splits']['train']['shards']) > 3 and m['dtype'] == 'uint16'
  assert m['splits']['train']['tokens'] == m['splits']['train']['bytes'] == len(train)
  assert m['source']['fingerprint'] == fingerprint and m['eval_bytes_per_token'] == 1.0
  assert m['tokenizer'] == {'name': 'byte', 'vocab_size': 256, 'sha256': None, 'file': None}


def test_sentencepiece_is_lossless_and_counts_bytes_exactly(sp_dir):
  src, out = sp_dir
  m = tokens.read_manifest(out)
  tok = tokens.load_tokenizer(out, m)
  assert tok.vocab_size == m['tokenizer']['vocab_size'] == 512 and m['tokenizer']['type'] == 'bpe'
  assert m['tokenizer']['sha256'] == tokenizers.sha256_file(os.path.join(out, 'tokenizer.model'))
  table = tok.bytes_per_token()
  for split in ('train', 'eval'):  # bytes per id, summed, give the text's bytes
    ids = shard_tokens(out, split)
    assert table[ids].sum() == m['splits'][split]['bytes']
  assert m['eval_bytes_per_token'] == pytest.approx(m['splits']['eval']['bytes'] / len(ids))
  assert m['eval_bytes_per_token'] > 2  # subwords, not bytes
  latin = open(os.path.join(src, 'latin1.txt'), 'rb').read()
  ids = tok.encode(latin)  # non-UTF-8 bytes are kept, as byte-fallback pieces
  assert tok.decode(ids) == latin and any(tok.sp.is_byte(int(i)) for i in ids)
  first = shard_tokens(out, 'train')[:50_000]
  assert tok.decode(first).split(b'\0')[0] == open(os.path.join(src, 'doc000.txt'), 'rb').read()
  assert table[ids].sum() == len(latin)


def test_an_interrupted_prepare_finishes_without_redoing_shards(tmp_path):
  src = write_corpus(tmp_path / 'src', n_files=40)
  out = str(tmp_path / 'out')
  first = prepare.prepare(f'textdir:{src}', 'byte', out, workers=1, shard_mb=0.02, progress=False)
  # An interrupted prepare: no manifest yet, one shard never finished.
  os.remove(os.path.join(out, tokens.MANIFEST))
  os.remove(os.path.join(out, 'train-00001.bin.json'))
  kept = os.path.join(out, 'train-00000.bin')
  os.utime(kept, (1, 1))
  with pytest.raises(ConfigError, match='manifest.json is missing'):
    tokens.read_manifest(out)
  again = prepare.prepare(f'textdir:{src}', 'byte', out, workers=1, shard_mb=0.02, progress=False)
  assert again == first and os.path.getmtime(kept) == 1  # finished shards are not rewritten
  with pytest.raises(ConfigError, match='other settings'):
    prepare.prepare(f'textdir:{src}', 'sentencepiece:vocab=300', out, progress=False)


# ----------------------------------------------------------------------------------------------
# The model takes the vocabulary; the epoch guard.
# ----------------------------------------------------------------------------------------------
def config(dataset, **fields):
  c = lm.get_config('size=nano')
  c.dataset, c.seq_len, c.batch_size = dataset, 16, 8
  c.update(fields)
  return c


def test_the_vocabulary_flows_into_the_model_and_a_smaller_one_is_refused(sp_dir):
  c = config(f'tokens:{sp_dir[1]}', steps=10)
  lm_task.check_config(c)
  described = lm_task.describe(c)
  assert described['model']['vocab_size'] == 512
  assert described['corpus']['tokenizer']['name'] == 'sentencepiece'
  c.model.vocab_size = 1024  # larger (padded) is allowed
  assert lm_task.describe(c)['model']['vocab_size'] == 1024
  c.model.vocab_size = 300
  with pytest.raises(ConfigError, match='model.vocab_size: 300 is below the 512 tokens'):
    lm_task.check_config(c)


def test_a_run_past_max_epochs_is_refused_with_the_numbers(sp_dir):
  per_epoch = lm_task.describe(config(f'tokens:{sp_dir[1]}'))['corpus']['tokens_per_epoch']
  one_epoch = per_epoch // (8 * 16)
  lm_task.check_steps(config(f'tokens:{sp_dir[1]}', steps=one_epoch))
  with pytest.raises(ConfigError, match=r'max_epochs: .* tokens is 2(\.\d+)? epochs .* over '
                                        r'max_epochs=1;'):
    lm_task.check_steps(config(f'tokens:{sp_dir[1]}', steps=2 * one_epoch + 1))
  lm_task.check_steps(config(f'tokens:{sp_dir[1]}', steps=2 * one_epoch, max_epochs=2.0))
  lm_task.check_steps(config('stdlib', steps=10**6))  # the embedded corpus: no cap by default
  with pytest.raises(ConfigError, match='max_epochs'):
    lm_task.check_steps(config('stdlib', steps=10**6, max_epochs=1.0))


def test_sweep_dry_run_prints_epochs_and_refuses_a_plan_over_the_limit(sp_dir, capsys):
  from experiments import runspec, sweep
  path = os.path.join(ROOT, 'configs/sweeps/isoflop.py')
  with pytest.raises(ConfigError, match='isoflop.py:dataset=tokens:DIR'):
    runspec.load(path)  # never the embedded corpus
  with pytest.raises(ConfigError, match=r'run C1e16-tiny: max_epochs: .* epochs of the'):
    runspec.load(f'{path}:dataset=tokens:{sp_dir[1]}')
  repeated = f'{path}:dataset=tokens:{sp_dir[1]},max_epochs=1e9'
  assert sweep.main([f'--sweep={repeated}', '--outdir=/nonexistent/plan', '--dry-run']) == 0
  out = capsys.readouterr().out
  per_epoch = lm_task.corpus(config(f'tokens:{sp_dir[1]}', seq_len=1024))['tokens_per_epoch']
  for run in runspec.load(repeated).runs:
    assert run.epochs == pytest.approx(run.tokens / per_epoch)
    line = next(l for l in out.splitlines() if l.startswith(run.name + ' '))
    assert line.split()[5] == f'{run.epochs:.3g}'


# ----------------------------------------------------------------------------------------------
# Bad input: one line each.
# ----------------------------------------------------------------------------------------------
def test_damaged_folders_are_one_line_each(sp_dir, tmp_path):
  out = str(tmp_path / 'copy')
  shutil.copytree(sp_dir[1], out)
  manifest = os.path.join(out, tokens.MANIFEST)
  text_ = open(manifest).read()
  open(manifest, 'w').write(text_[:len(text_) // 2])  # half-written
  with pytest.raises(ConfigError, match='not a complete manifest'):
    tokens.read_manifest(out)
  open(manifest, 'w').write(text_)
  with open(os.path.join(out, 'train-00000.bin'), 'ab') as f:
    f.write(b'xx')
  with pytest.raises(ConfigError, match='train-00000.bin has .* bytes but manifest.json says'):
    tokens.read_manifest(out)
  shutil.copy(os.path.join(sp_dir[1], 'train-00000.bin'), os.path.join(out, 'train-00000.bin'))
  with open(os.path.join(out, 'tokenizer.model'), 'ab') as f:
    f.write(b'\0')
  with pytest.raises(ConfigError, match='tokenizer .* has sha256 .* but manifest.json says'):
    tokens.read_manifest(out)
  with pytest.raises(ConfigError, match='fewer than one batch of 100000'):
    windows(sp_dir[1], batch_size=100_000)
  with pytest.raises(ConfigError, match='eval split .* has \\d+ tokens, too few for one window'):
    windows(sp_dir[1], seq_len=50_000)


@pytest.mark.parametrize('args,match', [
    (['--dataset=textdir:EMPTY', '--tokenizer=byte'], 'has 0 text files'),
    (['--dataset=textdir:EMPTY', '--tokenizer=sentencepiece:vocab=lots'], 'needs an integer vocab'),
    (['--dataset=textdir:EMPTY', '--tokenizer=wordpiece'], 'unknown .wordpiece.'),
    (['--dataset=csv:x'], 'is not a text source'),
    (['--dataset=textdir:EMPTY', '--tokenizer=sentencepiece:model=/no/such.model'],
     'no sentencepiece model'),
])
def test_prepare_bad_input_is_one_line(tmp_path, args, match):
  empty = tmp_path / 'empty'
  empty.mkdir()
  args = [a.replace('EMPTY', str(empty)) for a in args] + [f'--out={tmp_path / "out"}']
  proc = subprocess.run([sys.executable, '-m', 'scaling.data.prepare', *args], cwd=ROOT,
                        capture_output=True, text=True)
  assert proc.returncode != 0
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and 'Traceback' not in proc.stderr, proc.stderr
  assert __import__('re').search(match, lines[0]), lines[0]
  assert not os.path.exists(tmp_path / 'out' / tokens.MANIFEST)


# ----------------------------------------------------------------------------------------------
# End to end: a sentencepiece folder trained on by `nano`.
# ----------------------------------------------------------------------------------------------
def train(workdir, out, *extra):
  return [sys.executable, '-m', 'scaling.train', '--config=configs/lm.py:size=nano',
          f'--workdir={workdir}', f'--config.dataset=tokens:{out}', '--config.steps=20',
          '--config.seq_len=32', '--config.batch_size=8', '--config.eval_every=10',
          '--config.checkpoint_every=5', '--config.log_every=5', '--config.eval_batches=2', *extra]


def metrics(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


@pytest.fixture(scope='module')
def sp_run(sp_dir, tmp_path_factory):
  """`nano` trained 20 steps from the sentencepiece folder, uninterrupted."""
  workdir = str(tmp_path_factory.mktemp('sp_run') / 'straight')
  subprocess.run(train(workdir, sp_dir[1]), cwd=ROOT, check=True, capture_output=True)
  return workdir


def test_nano_trains_on_a_prepared_sentencepiece_folder(sp_dir, sp_run):
  rows = metrics(sp_run)
  evals = [r for r in rows if 'eval_loss' in r]
  assert [r['step'] for r in evals] == [0, 10, 20]
  assert evals[-1]['eval_loss'] < evals[0]['eval_loss'] - 0.3
  run = json.load(open(os.path.join(sp_run, 'run.json')))
  assert evals[0]['eval_loss'] == pytest.approx(np.log(512), abs=0.3)
  # bits per byte = total nats / (ln 2 * total bytes) of the eval windows, each of 32 tokens
  window_bytes = windows(sp_dir[1], seq_len=32).eval_batches()[0]['eval_window_bytes'][0]
  assert 2 * 32 < window_bytes < 6 * 32
  for r in evals:
    assert r['eval_bits_per_byte'] == pytest.approx(r['eval_loss'] * 32 / np.log(2) / window_bytes,
                                                    rel=1e-5)
  assert run['model']['vocab_size'] == 512 and run['corpus']['tokens_per_epoch'] > 0
  assert rows[-1]['epoch'] == pytest.approx(20 * 8 * 32 / run['corpus']['tokens_per_epoch'])


def test_a_killed_run_on_a_prepared_folder_resumes_bit_exactly(sp_dir, sp_run, tmp_path):
  """kill -9 after the step-10 checkpoint, then the same command: every logged loss and epoch is
  the uninterrupted run's (the windows of a step depend on (seed, step) alone)."""
  workdir = str(tmp_path / 'killed')
  proc = subprocess.Popen(train(workdir, sp_dir[1]), cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  path = os.path.join(workdir, 'metrics.jsonl')
  while not (os.path.exists(path) and any('"step": 15' in line for line in open(path))):
    assert proc.poll() is None, 'the run ended before it could be killed'
    time.sleep(0.1)
  proc.kill()
  proc.wait()
  assert max(r['step'] for r in metrics(workdir)) < 20
  subprocess.run(train(workdir, sp_dir[1]), cwd=ROOT, check=True, capture_output=True)
  fields = ('step', 'train_loss', 'eval_loss', 'eval_bits_per_byte', 'epoch')
  assert ([[r.get(k) for k in fields] for r in metrics(workdir)] ==
          [[r.get(k) for k in fields] for r in metrics(sp_run)])


def test_samples_are_decoded_with_the_runs_own_tokenizer(sp_dir, sp_run):
  # Greedy text from a sentencepiece run: pieces of the corpus's words, not its ids read as bytes.
  out = subprocess.run([sys.executable, '-m', 'scaling.sample', f'--workdir={sp_run}', '--num=1',
                        '--temperature=0', '--prompt=alpha beta'], cwd=ROOT, check=True,
                       capture_output=True, text=True).stdout
  sample = ast.literal_eval(out.strip())
  corpus = b''.join(open(os.path.join(sp_dir[0], f), 'rb').read() for f in os.listdir(sp_dir[0]))
  allowed = set(corpus.decode('utf-8', 'replace')) | {'\0'}
  assert sample.startswith('alpha beta') and len(sample) > 32
  assert set(sample) <= allowed, set(sample) - allowed
  assert any(word in sample[len('alpha beta'):] for word in WORDS)


def test_a_tfds_text_dataset_prepares_by_its_own_splits(tmp_path):
  from test_text_data import TinyText
  TinyText(data_dir=str(tmp_path / 'tfds'), file_format='array_record').download_and_prepare()
  out = str(tmp_path / 'tokens')
  m = prepare.prepare('tfds:tiny_text', 'byte', out, data_dir=str(tmp_path / 'tfds'), workers=1,
                      progress=False)
  assert m['splits']['train']['documents'] == 40 and m['splits']['eval']['documents'] == 10
  eval_docs = shard_tokens(out, 'eval').astype(np.uint8).tobytes().split(b'\0')[:-1]
  assert sorted(eval_docs) == sorted(f'line {i}: {"xyz " * (i % 7)}'.encode() for i in range(40, 50))


def test_the_launch_checks_refuse_a_run_past_max_epochs(sp_dir):
  # What scaling.train runs before it writes anything (and the sweep dry run with devices).
  from scaling import checks
  c = config(f'tokens:{sp_dir[1]}', steps=100_000)
  with pytest.raises(ConfigError, match=r'^max_epochs: 100000 steps x 8 x 16 tokens .* over max_epochs=1;'):
    checks.check_launch(c, 1, 1)
  c.steps = 100
  checks.check_launch(c, 1, 1)


# ----------------------------------------------------------------------------------------------
# A prepare rerun repairs what the trainer says is broken (docs/reliability.md).
# ----------------------------------------------------------------------------------------------
@pytest.fixture
def byte_prepared(tmp_path):
  src = write_corpus(tmp_path / 'src', n_files=40)
  out = str(tmp_path / 'out')
  first = prepare.prepare(f'textdir:{src}', 'byte', out, workers=1, shard_mb=0.02, progress=False)
  contents = {name: open(os.path.join(out, name), 'rb').read() for name in os.listdir(out)}
  return src, out, first, contents


def rerun(src, out, capsys):
  again = prepare.prepare(f'textdir:{src}', 'byte', out, workers=1, shard_mb=0.02, progress=False)
  return again, capsys.readouterr().err


def cut(path, keep=0.5):
  size = os.path.getsize(path)
  with open(path, 'r+b') as f:
    f.truncate(int(size * keep))


def flip_a_byte(path):
  with open(path, 'r+b') as f:
    f.seek(7)
    byte = f.read(1)
    f.seek(7)
    f.write(bytes([byte[0] ^ 1]))


@pytest.mark.parametrize('damage', ['cut shard', 'missing shard', 'altered shard',
                                    'cut manifest', 'manifest of another shape', 'cut shard record'])
def test_a_prepare_rerun_redoes_what_is_missing_cut_or_altered(byte_prepared, capsys, damage):
  src, out, first, contents = byte_prepared
  shard = os.path.join(out, 'train-00001.bin')
  if damage == 'cut shard':
    cut(shard)
  elif damage == 'missing shard':
    os.remove(shard)
  elif damage == 'altered shard':  # same size: only the checksum tells
    flip_a_byte(shard)
  elif damage == 'cut manifest':
    cut(os.path.join(out, tokens.MANIFEST))
  elif damage == 'manifest of another shape':
    with open(os.path.join(out, tokens.MANIFEST), 'w') as f:
      json.dump({'splits': 3}, f)
  else:
    cut(shard)
    cut(shard + '.json', 0.3)
  if damage != 'altered shard':  # which only a checksum tells: the trainer checks sizes
    with pytest.raises(ConfigError, match='run its prepare command again'):
      tokens.read_manifest(out)
  again, err = rerun(src, out, capsys)
  assert 'already prepared' not in err
  assert again == first
  assert {name: open(os.path.join(out, name), 'rb').read() for name in os.listdir(out)} == contents
  _, err = rerun(src, out, capsys)  # now it is
  assert 'already prepared; every shard matches' in err


def test_a_missing_tokenizer_model_is_one_line_not_already_prepared(sp_dir, tmp_path, capsys):
  out = str(tmp_path / 'sp')
  shutil.copytree(sp_dir[1], out)
  with open(os.path.join(out, 'tokenizer.model'), 'ab') as f:
    f.write(b'\0')
  with pytest.raises(ConfigError, match='tokenizer.model is missing or altered.*new --out'):
    prepare.prepare(f'textdir:{sp_dir[0]}', 'sentencepiece:vocab=512,type=bpe', out, workers=1,
                    shard_mb=0.1, progress=False)


def failing_writes(monkeypatch, error, after=1):
  """encode_task fails with `error` once `after` shards have been written."""
  real, calls = prepare.encode_task, []

  def encode(task, out, dtype):
    calls.append(task)
    if len(calls) > after:
      tmp = os.path.join(out, task.file) + prepare.TMP + str(os.getpid())
      with open(tmp, 'wb') as f:
        f.write(b'partial')  # what a full disk leaves behind before the error
      raise error
    return real(task, out, dtype)

  monkeypatch.setattr(prepare, 'encode_task', encode)


@pytest.mark.parametrize('error, match', [
    (OSError(28, 'No space left on device', 'x.bin'), '--out: no space left.*run the same command'),
    (FileNotFoundError(2, 'No such file or directory', '/src/doc7.txt'),
     '--dataset: /src/doc7.txt vanished.*new --out'),
    (PermissionError(13, 'Permission denied', '/src/doc8.txt'), 'Permission denied'),
])
def test_a_failing_prepare_is_one_line_and_leaves_no_temporary_file(tmp_path, monkeypatch, error,
                                                                   match):
  src = write_corpus(tmp_path / 'src', n_files=40)
  out = str(tmp_path / 'out')
  failing_writes(monkeypatch, error)
  with pytest.raises(ConfigError, match=match):
    prepare.prepare(f'textdir:{src}', 'byte', out, workers=1, shard_mb=0.02, progress=False)
  assert not [n for n in os.listdir(out) if prepare.TMP in n], os.listdir(out)
  assert not os.path.exists(os.path.join(out, tokens.MANIFEST))
  monkeypatch.undo()  # the disk has room again: the same command finishes the folder
  prepare.prepare(f'textdir:{src}', 'byte', out, workers=1, shard_mb=0.02, progress=False)
  tokens.read_manifest(out)


def test_an_interrupted_prepare_command_exits_130_without_temporary_files(tmp_path, monkeypatch,
                                                                          capsys):
  src = write_corpus(tmp_path / 'src', n_files=40)
  out = str(tmp_path / 'out')
  failing_writes(monkeypatch, KeyboardInterrupt())
  with pytest.raises(SystemExit) as e:
    prepare.main([f'--dataset=textdir:{src}', f'--out={out}', '--workers=1', '--shard_mb=0.02'])
  assert e.value.code == 130
  assert 'run the same command to finish it' in capsys.readouterr().err
  assert not [n for n in os.listdir(out) if prepare.TMP in n]


def test_a_prepare_reports_special_files_it_skipped(tmp_path, capsys):
  src = write_corpus(tmp_path / 'src', n_files=40)
  os.mkfifo(os.path.join(src, 'pipe.txt'))
  out = str(tmp_path / 'out')
  prepare.main([f'--dataset=textdir:{src}', f'--out={out}', '--workers=1', '--shard_mb=0.02'])
  assert 'skipped_special 1' in capsys.readouterr().out
  assert tokens.read_manifest(out)['source']['report']['skipped_special'] == 1


def test_a_cut_plan_is_one_line(byte_prepared):
  src, out, _, _ = byte_prepared
  cut(os.path.join(out, prepare.PLAN))
  with pytest.raises(ConfigError, match='prepare.json is cut short'):
    prepare.prepare(f'textdir:{src}', 'byte', out, workers=1, shard_mb=0.02, progress=False)
