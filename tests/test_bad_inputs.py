"""Bad input to every command line: a non-zero exit, one line naming the field (and the fix), no
traceback, and nothing written that a later reader could take for valid.

Cheap by construction: scaling.train, experiments.sweep and the analysis commands run in this
process (they all fail at the argument and config checks, before any compilation); the
scaling.sample cases run as concurrent subprocesses (its flags clash with scaling.train's); one
tiny completed run, trained once, is the workdir of the cases that need one.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from analysis import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DONE_ARGS = ['--config=configs/lm.py:size=nano', '--config.steps=4', '--config.seq_len=32',
             '--config.log_every=2', '--config.eval_every=4', '--config.eval_batches=1',
             '--config.warmup_steps=1', '--config.checkpoint_every=2']
NANO = '--config=configs/lm.py:size=nano'


class Paths:
  """What the cases refer to: {new} never exists before, {done} is a completed run, ..."""

  def __init__(self, tmp):
    self.tmp = tmp
    self.file = tmp / 'a_file'
    self.file.write_text('not a directory\n')
    self.done = tmp / 'done'
    self.broken_config = tmp / 'broken_config.py'
    self.broken_config.write_text('def get_config():\n  return {\n')  # unclosed: line 2
    self.broken_sweep = tmp / 'broken_sweep.py'
    self.broken_sweep.write_text('def get_sweep():\n  return {"name": "x", "runs": [}\n')
    self.nofit = tmp / 'nofit'
    self.nofit.mkdir()
    (self.nofit / 'fit.json').write_text(json.dumps({'law': 'chinchilla', 'converged': False}))
    self.csv = tmp / 'points.csv'
    rng = np.random.default_rng(0)
    N = np.geomspace(1e7, 1e9, 12)
    D = N * rng.uniform(5, 100, 12)
    pd.DataFrame({'N': N, 'D': D, 'C': 6 * N * D,
                  'loss': 1.7 + 400 / N ** 0.34 + 1500 / D ** 0.28}).to_csv(self.csv, index=False)
    self.inf_csv = tmp / 'inf.csv'
    pd.read_csv(self.csv).assign(loss=lambda d: d.loss.where(d.index != 3, np.inf)).to_csv(
        self.inf_csv, index=False)
    self.same_csv = tmp / 'same.csv'
    pd.DataFrame({'N': [1e8] * 10, 'D': [2e9] * 10, 'C': [1.2e18] * 10,
                  'loss': [3.0] * 10}).to_csv(self.same_csv, index=False)

  def sweep(self, name: str, runs: list[dict]) -> str:
    path = self.tmp / f'{name}.py'
    path.write_text(textwrap.dedent(f'''
        def get_sweep():
          return {{'name': {name!r}, 'runs': {runs!r}}}
        '''))
    return str(path)

  def nano_sweep(self, name: str, **overrides) -> str:
    fast = {'seq_len': 32, 'eval_batches': 1, 'steps': 4, 'warmup_steps': 1}
    return self.sweep(name, [{'name': 'a', 'config': 'configs/lm.py:size=nano',
                              'overrides': {**fast, **overrides}}])

  def fmt(self, arg: str, new) -> str:
    return arg.format(new=new, done=self.done, file=self.file,
                      broken_config=self.broken_config, broken_sweep=self.broken_sweep,
                      nofit=self.nofit, csv=self.csv, inf_csv=self.inf_csv,
                      same_csv=self.same_csv, out=new)


@pytest.fixture(scope='module')
def paths(tmp_path_factory):
  p = Paths(tmp_path_factory.mktemp('bad'))
  out = subprocess.run([sys.executable, '-m', 'scaling.train', f'--workdir={p.done}', *DONE_ARGS],
                       cwd=ROOT, capture_output=True, text=True)
  assert out.returncode == 0, out.stderr[-2000:]
  return p


def done_with(*changed: str) -> list[str]:
  """The completed run's arguments with some --config.FIELD=VALUE changed, and its --workdir."""
  fields = {a.split('=')[0] for a in changed}
  return [a for a in DONE_ARGS if a.split('=')[0] not in fields] + [*changed, '--workdir={done}']


# (command, argv, what the one line must name). {new}: a path that must still not exist after.
TRAIN = [
    ('batch_size=0', ['--config.batch_size=0'], 'batch_size'),
    ('batch_size<0', ['--config.batch_size=-4'], 'batch_size'),
    ('eval_batches=0', ['--config.eval_batches=0'], 'eval_batches'),
    ('eval_batches<0', ['--config.eval_batches=-1'], 'eval_batches'),
    ('n_head=0', ['--config.model.n_head=0'], 'model.n_head'),
    ('n_head not dividing', ['--config.model.n_head=3'], 'model.n_head'),
    ('seq_len=0', ['--config.seq_len=0'], 'seq_len'),
    ('lr<0', ['--config.lr=-0.001'], 'lr'),
    ('lr=0', ['--config.lr=0'], 'lr'),
    ('lr=nan', ['--config.lr=nan'], 'lr'),
    ('keep_checkpoints=0', ['--config.keep_checkpoints=0'], 'keep_checkpoints'),
    ('steps=0', ['--config.steps=0'], 'steps'),
    ('log_every=0', ['--config.log_every=0'], 'log_every'),
    ('eval_every=0', ['--config.eval_every=0'], 'eval_every'),
    ('checkpoint_every=0', ['--config.checkpoint_every=0'], 'checkpoint_every'),
    ('grad_accum=0', ['--config.grad_accum=0'], 'grad_accum'),
    ('warmup<0', ['--config.warmup_steps=-1'], 'warmup_steps'),
    ('warmup>steps', ['--config.warmup_steps=500'], 'warmup_steps'),
    ('b1>1', ['--config.b1=1.5'], 'b1'),
    ('b2<0', ['--config.b2=-0.1'], 'b2'),
    ('weight_decay<0', ['--config.weight_decay=-1'], 'weight_decay'),
    ('min_lr_ratio>1', ['--config.min_lr_ratio=2'], 'min_lr_ratio'),
    ('cooldown_fraction>1', ['--config.cooldown_fraction=1.5'], 'cooldown_fraction'),
    ('schedule', ['--config.schedule=step'], 'schedule'),
    ('cooldown_shape', ['--config.cooldown_shape=bogus'], 'cooldown_shape'),
    ('dtype', ['--config.dtype=float16'], 'dtype'),
    ('task', ['--config.task=vision'], 'task'),
    ('mlp', ['--config.model.mlp=relu'], 'model.mlp'),
    ('remat', ['--config.model.remat=everything'], 'model.remat'),
    ('vocab_size', ['--config.model.vocab_size=100'], 'model.vocab_size'),
    ('d_model=0', ['--config.model.d_model=0'], 'model.d_model'),
    ('n_layer=0', ['--config.model.n_layer=0'], 'model.n_layer'),
    ('dataset unknown', ['--config.dataset=wikipedia'], 'dataset'),
    ('textdir missing', ['--config.dataset=textdir:/nonexistent/folder'], 'dataset'),
    ('data_dir missing', ['--config.data_dir=/nonexistent/tfds'], 'data_dir'),
    ('unknown field', ['--config.nonexistent=1'], 'nonexistent'),
    ('field type', ['--config.batch_size=abc'], 'batch_size'),
    ('mesh too big', ['--config.mesh.data=2', '--config.mesh.fsdp=2'], 'mesh'),
    ('mesh two -1', ['--config.mesh.data=-1', '--config.mesh.fsdp=-1'], 'mesh'),
    ('init_from missing', ['--config.init_from=/nonexistent/run'], 'init_from'),
    ('lr=inf', ['--config.lr=inf'], 'lr'),
    ('weight_decay=nan', ['--config.weight_decay=nan'], 'weight_decay'),
    ('grad_clip=inf', ['--config.grad_clip=inf'], 'grad_clip'),
    ('min_lr_ratio=nan', ['--config.min_lr_ratio=nan'], 'min_lr_ratio'),
    ('cooldown_fraction=nan', ['--config.cooldown_fraction=nan'], 'cooldown_fraction'),
    ('b1=nan', ['--config.b1=nan'], 'b1'),
    ('peak_flops=inf', ['--config.peak_flops=inf'], 'peak_flops'),
    ('budget=nan', ['--config.budget=nan'], 'budget'),
    ('max_epochs=inf', ['--config.max_epochs=inf'], 'max_epochs'),
    ('max_epochs=-inf', ['--config.max_epochs=-inf'], 'max_epochs'),
    ('eval windows overlap', ['--config.eval_batches=5000'], 'eval_batches'),
    ('noise scale with one batch size', ['--config.log_grad_noise_scale=true'],
     'log_grad_noise_scale'),
]
TRAIN = [(name, [NANO, '--workdir={new}', *argv], field) for name, argv, field in TRAIN] + [
    ('config arg typo', ['--config=configs/lm.py:sise=small', '--workdir={new}'], 'sise'),
    ('config bare word', ['--config=configs/lm.py:nano', '--workdir={new}'], 'size=nano'),
    ('config size', ['--config=configs/lm.py:size=huge', '--workdir={new}'], 'size'),
    ('config missing file', ['--config=configs/nonexistent.py', '--workdir={new}'], 'no file'),
    ('config syntax error', ['--config={broken_config}', '--workdir={new}'], 'broken_config.py:2'),
    ('dit size', ['--config=configs/dit.py:size=S/3', '--workdir={new}'], 'size'),
    ('dit dataset', ['--config=configs/dit.py:dataset=imagenet', '--workdir={new}'], 'dataset'),
    ('dit eval_grid', ['--config=configs/dit.py', '--config.diffusion.eval_grid=0',
                       '--workdir={new}'], 'diffusion.eval_grid'),
    ('dit eval repeats images', ['--config=configs/dit.py', '--config.eval_batches=3',
                                 '--workdir={new}'], 'eval_batches'),
    ('dit cfg_scale=nan', ['--config=configs/dit.py', '--config.diffusion.cfg_scale=nan',
                           '--workdir={new}'], 'diffusion.cfg_scale'),
    ('dit logsnr_max=inf', ['--config=configs/dit.py', '--config.diffusion.logsnr_max=inf',
                            '--workdir={new}'], 'diffusion.logsnr_max'),
    ('dit label_dropout=1', ['--config=configs/dit.py', '--config.model.label_dropout=1.0',
                             '--workdir={new}'], 'model.label_dropout'),
    ('init_from another width', [NANO, '--config.init_from={done}', '--config.init_step=4',
                                 '--config.model.d_model=64', '--workdir={new}'], 'init_from'),
    ('init_from another depth', [NANO, '--config.init_from={done}', '--config.init_step=4',
                                 '--config.model.n_layer=3', '--workdir={new}'], 'init_from'),
    ('init_from a missing step', [NANO, '--config.init_from={done}', '--config.init_step=3',
                                  '--workdir={new}'], 'init_step'),
    ('workdir missing', [NANO], '--workdir'),
    ('workdir is a file', [NANO, '--workdir={file}'], 'workdir'),
    ('workdir under a file', [NANO, '--workdir={file}/run'], 'workdir'),
    ('changed lr on a completed run', done_with('--config.lr=0.01'), 'lr'),
    ('changed model on a completed run', done_with('--config.model.d_model=64'), 'model.d_model'),
    ('changed cosine steps', done_with('--config.steps=8'), 'steps'),
    ('steps below trained', done_with('--config.steps=2'), 'steps: 2'),
]
SAMPLE = [
    ('temperature<0', ['--workdir={done}', '--temperature=-1'], '--temperature'),
    ('temperature nan', ['--workdir={done}', '--temperature=nan'], '--temperature'),
    ('temperature text', ['--workdir={done}', '--temperature=abc'], '--temperature'),
    ('prompt too long', ['--workdir={done}', '--prompt=' + 'x' * 40], '--prompt'),
    ('prompt empty', ['--workdir={done}', '--prompt='], '--prompt'),
    ('num=0', ['--workdir={done}', '--num=0'], '--num'),
    ('workdir missing', ['--workdir={new}'], '--workdir'),
    ('workdir not a run', ['--workdir={nofit}'], 'config.json'),
    ('out folder missing', ['--workdir={done}', '--out={new}/x/grid.png'], '--out'),
    ('unknown flag', ['--workdir={done}', '--temprature=1'], 'temprature'),
]
SWEEP = [
    ('syntax error', ['--sweep={broken_sweep}'], 'broken_sweep.py:2'),
    ('missing file', ['--sweep=configs/sweeps/nonexistent.py'], 'no file'),
    ('arg typo', ['--sweep=configs/sweeps/tokens_per_param.py:ratoi=5'], 'ratoi'),
    ('arg type', ['--sweep=configs/sweeps/tokens_per_param.py:ratio=many'], 'ratio'),
    ('arg value', ['--sweep=configs/sweeps/tokens_per_param.py:ratio=-1'], 'ratio'),
    ('arg to a sweep without', ['--sweep=configs/sweeps/quickstart.py:budget=1'], 'argument'),
    ('max-parallel', ['--sweep=configs/sweeps/quickstart.py', '--max-parallel=0'],
     '--max-parallel'),
    ('mfu', ['--sweep=configs/sweeps/quickstart.py', '--mfu=2'], '--mfu'),
    ('backend', ['--sweep=configs/sweeps/quickstart.py', '--backend=k8s'], '--backend'),
]
SWEEP_RUNS = [  # one run of nano with these overrides, in a sweep file written for the case
    ('batch_size=0', {'batch_size': 0}, 'batch_size'),
    ('lr<0', {'lr': -1.0}, 'lr'),
    ('dataset path', {'dataset': 'textdir:/nonexistent/folder'}, 'dataset'),
    ('mesh too big', {'mesh.data': 2, 'mesh.fsdp': 2}, 'mesh'),
    ('unknown field', {'nonexistent': 1}, 'nonexistent'),
    ('n_head', {'model.n_head': 3}, 'model.n_head'),
    ('noise scale with one batch size', {'log_grad_noise_scale': True}, 'log_grad_noise_scale'),
]
FIT = [
    ('runs missing', ['--runs={new}/runs', '--out={out}'], '--runs'),
    ('csv missing', ['--csv={new}.csv', '--out={out}'], 'csv'),
    ('inf loss', ['--csv={inf_csv}', '--out={out}'], 'loss'),
    ('identical rows', ['--csv={same_csv}', '--out={out}'], 'distinct'),
    ('out is a file', ['--csv={csv}', '--out={file}'], 'is a file'),
    ('law', ['--csv={csv}', '--out={out}', '--law=cubic'], '--law'),
    ('bootstrap<0', ['--csv={csv}', '--out={out}', '--bootstrap=-1'], '--bootstrap'),
]
PLAN = [
    ('fit missing', ['--fit={new}/fit.json', '--flops=1e20', '--hardware=h100'], 'fit'),
    ('not converged', ['--fit={nofit}/fit.json', '--flops=1e20', '--hardware=h100'], 'converged'),
    ('mfu=0', ['--fit={nofit}/fit.json', '--flops=1e20', '--hardware=h100', '--mfu=0'], '--mfu'),
    ('hardware', ['--fit={nofit}/fit.json', '--flops=1e20', '--hardware=abacus'], '--hardware'),
]
REPRODUCE = [
    ('bootstrap=1', ['--bootstrap=1', '--out={out}'], '--bootstrap'),
    ('data missing', ['--data={new}/chinchilla.csv', '--out={out}'], 'data'),
    ('isoflop', ['--isoflop=magic', '--out={out}'], '--isoflop'),
]


def _in_process(run, capsys) -> tuple[int, list[str]]:
  """(exit status, lines on stdout and stderr): what a shell would see, minus the interpreter."""
  try:
    run()
    code = 0
  except SystemExit as e:
    code = e.code if isinstance(e.code, int) else 1
    if isinstance(e.code, str):
      print(e.code, file=sys.stderr)  # what the interpreter prints for sys.exit('...')
  out, err = capsys.readouterr()
  return code, [line for line in (out + err).splitlines() if line.strip()]


def run_train(argv: list[str]) -> None:
  from absl import flags
  from scaling import train
  from scaling.data import text
  from scaling.tasks import lm as lm_task
  lm_task._corpus.cache_clear()  # a process reads its data once; these cases swap it in between
  text.read_folder.cache_clear()
  flags.FLAGS.unparse_flags()
  for name in [n for n in flags.FLAGS if n.startswith('config.')]:
    delattr(flags.FLAGS, name)  # the previous case's overrides, defined for its config object
  if not any(a.startswith('--config=') for a in argv):
    argv = argv + [NANO]
  argv = ['scaling.train', *argv]
  saved, sys.argv = sys.argv, argv  # ml_collections reads the --config.FIELD overrides there
  try:
    train.main(train.parse_flags(argv))
  finally:
    sys.argv = saved


def run_sweep(argv: list[str]) -> None:
  from experiments import sweep
  from scaling.errors import ConfigError
  try:
    sweep.main(argv)
  except ConfigError as e:  # as its __main__ does
    sys.exit(f'error: {e}')


def run_analysis(module: str, argv: list[str]) -> None:
  main = __import__(module, fromlist=['main']).main
  cli.run(main, argv)


def snapshot(folder) -> dict:
  """Every file under `folder` with a hash of its bytes (None when the folder is absent)."""
  if not os.path.exists(folder):
    return None
  found = {}
  for path, _, files in os.walk(folder):
    for name in files:
      full = os.path.join(path, name)
      with open(full, 'rb') as f:
        found[os.path.relpath(full, folder)] = hashlib.sha256(f.read()).hexdigest()
  return found


def check(code: int, lines: list[str], field: str, text: str = '') -> None:
  assert code != 0, lines
  errors = [l for l in lines if not l.startswith('warning:')]
  assert len(errors) == 1, lines
  assert field in errors[0], (field, errors[0])
  assert 'nknown command line flag' not in errors[0] or field in ('temprature',), errors[0]
  assert 'Traceback' not in text + '\n'.join(lines)


def _unchanged(paths, new, run) -> tuple[int, list[str]]:
  before = snapshot(paths.done)
  result = run()
  assert snapshot(paths.done) == before, 'the completed run was changed'
  assert not new.exists(), f'left behind: {snapshot(new)}'
  return result


@pytest.mark.parametrize('argv, field', [c[1:] for c in TRAIN], ids=[c[0] for c in TRAIN])
def test_train(paths, capsys, tmp_path, argv, field):
  new = tmp_path / 'new'
  argv = [paths.fmt(a, new) for a in argv]
  code, lines = _unchanged(paths, new, lambda: _in_process(lambda: run_train(argv), capsys))
  check(code, lines, field)
  assert not paths.file.is_dir() and paths.file.read_text() == 'not a directory\n'


@pytest.mark.parametrize('argv, field', [c[1:] for c in SWEEP], ids=[c[0] for c in SWEEP])
def test_sweep(paths, capsys, tmp_path, argv, field):
  new = tmp_path / 'new'
  argv = [paths.fmt(a, new) for a in argv] + [f'--outdir={new}', '--dry-run']
  check(*_unchanged(paths, new, lambda: _in_process(lambda: run_sweep(argv), capsys)), field)


@pytest.mark.parametrize('overrides, field', [c[1:] for c in SWEEP_RUNS],
                         ids=[c[0] for c in SWEEP_RUNS])
def test_sweep_dry_run_checks_what_the_run_checks(paths, capsys, tmp_path, overrides, field):
  new = tmp_path / 'new'
  path = paths.nano_sweep(f'sweep_{abs(hash(field))}', **overrides)
  argv = [f'--sweep={path}', f'--outdir={new}', '--dry-run']
  check(*_unchanged(paths, new, lambda: _in_process(lambda: run_sweep(argv), capsys)), field)


ANALYSIS = ([('analysis.fit', *c) for c in FIT] + [('analysis.plan', *c) for c in PLAN]
            + [('experiments.reproduce_chinchilla', *c) for c in REPRODUCE])


@pytest.mark.parametrize('module, argv, field', [(c[0], *c[2:]) for c in ANALYSIS],
                         ids=[f'{c[0]}-{c[1]}' for c in ANALYSIS])
def test_analysis(paths, capsys, tmp_path, module, argv, field):
  new = tmp_path / 'new'
  argv = [paths.fmt(a, new) for a in argv]
  check(*_unchanged(paths, new, lambda: _in_process(lambda: run_analysis(module, argv), capsys)),
        field)


# scaling.sample's flags clash with scaling.train's, so its cases run in one process of their own,
# each parsed and run as `python -m scaling.sample` would.
SAMPLE_RUNNER = '''
import contextlib, io, json, sys
from absl import flags
from scaling import sample
results = {}
for name, argv in json.loads(sys.stdin.read()).items():
  flags.FLAGS.unparse_flags()
  err = io.StringIO()
  with contextlib.redirect_stderr(err), contextlib.redirect_stdout(err):
    try:
      sample.main(sample.parse_flags(['scaling.sample', *argv]))
      code = 0
    except SystemExit as e:
      code = e.code if isinstance(e.code, int) else 1
      print(e.code if isinstance(e.code, str) else '', file=sys.stderr)
    except Exception:  # a traceback: the test reports it
      import traceback
      traceback.print_exc()
      code = 'traceback'
  results[name] = (code, err.getvalue())
print(json.dumps(results))
'''


@pytest.fixture(scope='module')
def sample_results(paths):
  """{case: (status, output)} for every scaling.sample case."""
  new = paths.tmp / 'new'
  cases = {name: [paths.fmt(a, new) for a in argv] for name, argv, _ in SAMPLE}
  out = subprocess.run([sys.executable, '-c', SAMPLE_RUNNER], input=json.dumps(cases), cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize('name, field', [(c[0], c[2]) for c in SAMPLE], ids=[c[0] for c in SAMPLE])
def test_sample(paths, sample_results, name, field):
  code, text = sample_results[name]
  check(code, [l for l in text.splitlines() if l.strip()], field, text)
  assert not (paths.tmp / 'new').exists()


# ----------------------------------------------------------------------------------------------
# A relaunch whose inputs changed under the run (issue 27 §1-2): refused in one line that names
# the input, and the completed run's files byte-identical afterwards.
# ----------------------------------------------------------------------------------------------
def write_corpus(root, seed: int, n_files: int = 60) -> str:
  rng = np.random.default_rng(seed)
  words = 'alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi'.split()
  os.makedirs(root, exist_ok=True)
  for i in range(n_files):
    with open(os.path.join(root, f'doc{i:03d}.txt'), 'w') as f:
      f.write(' '.join(rng.choice(words, 400)) + '\n')
  return str(root)


class Bound:
  """Runs trained on a text folder and on a prepared folder, and the data to swap in."""

  def __init__(self, tmp):
    from scaling.data import prepare
    self.tmp = tmp
    self.text = write_corpus(tmp / 'text', seed=0)
    self.other_text = write_corpus(tmp / 'other_text', seed=1)
    self.tokens, self.sp_tokens, self.other_tokens = (str(tmp / n) for n in
                                                      ('tokens', 'sp_tokens', 'other_tokens'))
    quiet = dict(workers=1, progress=False)
    prepare.prepare(f'textdir:{self.text}', 'byte', self.tokens, **quiet)
    prepare.prepare(f'textdir:{self.text}', 'sentencepiece:vocab=300', self.sp_tokens, **quiet)
    prepare.prepare(f'textdir:{self.other_text}', 'byte', self.other_tokens, **quiet)
    self.text_run, self.tokens_run = str(tmp / 'text_run'), str(tmp / 'tokens_run')
    for workdir, dataset in ((self.text_run, f'textdir:{self.text}'),
                             (self.tokens_run, f'tokens:{self.tokens}')):
      out = subprocess.run([sys.executable, '-m', 'scaling.train', f'--workdir={workdir}',
                            *DONE_ARGS, f'--config.dataset={dataset}'], cwd=ROOT,
                           capture_output=True, text=True)
      assert out.returncode == 0, out.stderr[-2000:]


@pytest.fixture(scope='module')
def bound(tmp_path_factory):
  return Bound(tmp_path_factory.mktemp('bound'))


def swap(folder: str, replacement: str):
  """Puts `replacement`'s files in place of `folder`'s until the returned undo is called."""
  aside = folder + '.aside'
  os.rename(folder, aside)
  shutil.copytree(replacement, folder)
  return lambda: (shutil.rmtree(folder), os.rename(aside, folder))


def edit_corpus(how: str):
  def change(b: Bound):
    aside = b.text + '.aside'
    shutil.copytree(b.text, aside)
    if how == 'add':
      with open(os.path.join(b.text, 'new.txt'), 'w') as f:
        f.write('a new document ' * 50)
    elif how == 'remove':
      os.remove(os.path.join(b.text, 'doc007.txt'))
    else:
      with open(os.path.join(b.text, 'doc007.txt'), 'a') as f:
        f.write('one more line\n')
    return lambda: (shutil.rmtree(b.text), os.rename(aside, b.text))
  return change


def damage_file(name: str, text: str):
  def change(b: Bound):
    path = os.path.join(b.tokens_run, name)
    with open(path) as f:
      original = f.read()
    with open(path, 'w') as f:
      f.write(text if text != 'CUT' else original[:len(original) // 2])

    def undo():
      with open(path, 'w') as f:
        f.write(original)
    return undo
  return change


def lose_config_json(b: Bound):
  path = os.path.join(b.tokens_run, 'config.json')
  os.rename(path, path + '.aside')
  return lambda: os.rename(path + '.aside', path)


def _edit_lr(b: Bound):
  path = os.path.join(b.tokens_run, 'config.json')
  with open(path) as f:
    original = f.read()
  with open(path, 'w') as f:
    f.write(original.replace('"lr": 0.003', '"lr": 0.01'))

  def undo():
    with open(path, 'w') as f:
      f.write(original)
  return undo



def replace_with(name: str, folder: bool):
  """RUN/name set aside and replaced by a folder (or a file) of that name."""
  def change(b: Bound):
    path = os.path.join(b.tokens_run, name)
    os.rename(path, path + '.aside')
    os.mkdir(path) if folder else open(path, 'w').close()

    def undo():
      shutil.rmtree(path) if folder else os.remove(path)
      os.rename(path + '.aside', path)
    return undo
  return change


# (case, change(bound) -> undo, which run, extra argv, what the one line must name)
RELAUNCH = [
    ('text folder swapped', lambda b: swap(b.text, b.other_text), 'text_run', [], 'fingerprint'),
    ('a file added to the text folder', edit_corpus('add'), 'text_run', [], 'fingerprint'),
    ('a file removed from the text folder', edit_corpus('remove'), 'text_run', [], 'split.train'),
    ('a file of the text folder edited', edit_corpus('append'), 'text_run', [], 'fingerprint'),
    ('tokens swapped for another tokenizer', lambda b: swap(b.tokens, b.sp_tokens), 'tokens_run',
     [], 'tokenizer.name'),
    ('tokens swapped for another corpus', lambda b: swap(b.tokens, b.other_tokens), 'tokens_run',
     [], 'fingerprint'),
    ('dataset pointed at another corpus', lambda b: lambda: None, 'tokens_run',
     ['--config.dataset=tokens:{other_tokens}'], 'dataset'),
    ('config.json lost and lr changed', lose_config_json, 'tokens_run', ['--config.lr=0.01'],
     'lr (0.003 -> 0.01)'),
    ('config.json edited to the new lr', _edit_lr, 'tokens_run', ['--config.lr=0.01'],
     'lr (0.003 -> 0.01)'),
    ('run.json cut', damage_file('run.json', 'CUT'), 'tokens_run', [], 'run.json'),
    ('run.json empty', damage_file('run.json', ''), 'tokens_run', [], 'run.json'),
    ('run.json a list', damage_file('run.json', '[]'), 'tokens_run', [], 'run.json'),
    ('checkpoints a file', replace_with('checkpoints', False), 'tokens_run', [], 'checkpoints'),
    ('config.json a folder', replace_with('config.json', True), 'tokens_run', [], 'config.json'),
    ('run.json a folder', replace_with('run.json', True), 'tokens_run', [], 'run.json'),
    ('metrics.jsonl a folder', replace_with('metrics.jsonl', True), 'tokens_run', [],
     'metrics.jsonl'),
]


@pytest.mark.parametrize('change, run, argv, field', [c[1:] for c in RELAUNCH],
                         ids=[c[0] for c in RELAUNCH])
def test_a_relaunch_on_changed_inputs_is_refused(bound, capsys, change, run, argv, field):
  workdir = getattr(bound, run)
  dataset = f'textdir:{bound.text}' if run == 'text_run' else f'tokens:{bound.tokens}'
  argv = [*DONE_ARGS, f'--config.dataset={dataset}', *argv, f'--workdir={workdir}']
  argv = [a.format(other_tokens=bound.other_tokens) for a in argv]
  undo = change(bound)
  try:
    before = snapshot(workdir)
    code, lines = _in_process(lambda: run_train(argv), capsys)
    assert snapshot(workdir) == before, 'the completed run was changed'
  finally:
    undo()
  check(code, lines, field)
  assert 'damaged' not in lines[-1]


def test_a_moved_corpus_with_the_same_data_is_an_allowed_change(bound, capsys, tmp_path):
  workdir = str(tmp_path / 'run')
  shutil.copytree(bound.tokens_run, workdir)
  moved = str(tmp_path / 'moved_tokens')
  shutil.copytree(bound.tokens, moved)
  code, lines = _in_process(lambda: run_train([*DONE_ARGS, f'--config.dataset=tokens:{moved}',
                                               f'--workdir={workdir}']), capsys)
  assert code == 0, lines
  with open(os.path.join(workdir, 'run.json')) as f:
    run = json.load(f)
  assert run['status'] == 'completed'
  assert run['config_changes'][-1]['fields'] == {'dataset': [f'tokens:{bound.tokens}',
                                                             f'tokens:{moved}']}


def test_checkpoints_of_another_model_are_called_a_mismatch_not_damage(bound):
  """A run whose checkpoints predate the record (config.json the only copy of its config), with
  config.json edited: restoring would fail, and the line must say why, not 'damaged'."""
  from configs import lm
  from scaling import checkpoint, sharding, steps
  from scaling.errors import ConfigError
  from scaling.tasks import TASKS
  c = lm.get_config('size=nano')
  c.model.d_model = 64
  fns = steps.build(c, TASKS['lm'], sharding.make_mesh(c.mesh))
  with pytest.raises(ConfigError, match='step 2 holds another model .*d_model|step 2 holds another '
                                        'model .*intact, not damaged'):
    checkpoint.check_matches(bound.tokens_run, fns.abstract_state)


def test_sample_refuses_a_swapped_tokenizer_and_warns_of_an_unfinished_run(bound, tmp_path):
  def sample(workdir):
    return subprocess.run([sys.executable, '-m', 'scaling.sample', f'--workdir={workdir}',
                           '--num=1', '--prompt=alpha'], cwd=ROOT, capture_output=True, text=True)
  undo = swap(bound.tokens, bound.sp_tokens)
  try:
    out = sample(bound.tokens_run)
  finally:
    undo()
  check(out.returncode, [l for l in out.stderr.splitlines() if l.strip()], 'tokenizer', out.stderr)
  workdir = str(tmp_path / 'run')
  shutil.copytree(bound.tokens_run, workdir)
  shutil.rmtree(os.path.join(workdir, 'checkpoints', '4'))
  with open(os.path.join(workdir, 'run.json'), 'w') as f:
    f.write('{"status": ')  # cut, and the sampler does not need it
  out = sample(workdir)
  assert out.returncode == 0 and out.stdout.strip().startswith("'alpha"), out.stderr
  assert 'run.json' in out.stderr and 'Traceback' not in out.stderr
  assert 'at step 2 of 4, not completed' in out.stderr
