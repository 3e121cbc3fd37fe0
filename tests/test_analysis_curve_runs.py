"""Loss curves from run directories (analysis.curves.from_run), written here by hand following
docs/run-format.md, with the LR that scaling.optim logs: the CSV and run-directory readers agree,
a branch's LR before its fork is its trunk's, and runs of different tasks are not fitted
together."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from analysis import curve_laws
from analysis import curves
from configs import common
from scaling import optim
from test_analysis_curve_cli import run_cli

TRUTH = dict(L0=1.5, A=0.5, alpha=0.4, B=40.0, C=2.0, beta=0.6, gamma=0.6)


def _config(**fields) -> dict:
  c = common.training_config()
  c.update({**dict(lr=3e-3, steps=1000, warmup_steps=20, log_every=50, eval_every=100,
                   schedule='cosine'), **fields})
  return c.to_dict()


def write_run(root: pathlib.Path, name: str, config: dict, task: str = 'lm',
              start: int = 0) -> pathlib.Path:
  """metrics.jsonl with the LR scaling.optim trains with (row `step`: the LR of update step − 1),
  train rows every log_every steps and eval rows every eval_every (losses from the law)."""
  from ml_collections import config_dict  # pylint: disable=import-outside-toplevel
  schedule = optim.schedule(config_dict.ConfigDict(config))
  lr_T = np.concatenate([[0.0], [float(schedule(s)) for s in range(config['steps'])]])
  d = root / name
  d.mkdir(parents=True)
  (d / 'config.json').write_text(json.dumps(config))
  rows = [{'step': start, 'eval_loss': 9.0, 'eval_loss_stderr': 0.03}]  # the model at the start
  for step in range(start + config['log_every'], config['steps'] + 1, config['log_every']):
    window = np.arange(step - config['log_every'], step)
    rows.append({'step': step, 'lr': lr_T[step], 'train_loss': float(
        curve_laws.multipower(lr_T, np.maximum(window, 1), **TRUTH).mean())})
    if step % config['eval_every'] == 0:
      rows.append({'step': step, 'eval_loss': float(curve_laws.multipower(
          lr_T, np.array([step]), **TRUTH)[0]), 'eval_loss_stderr': 0.03})
  (d / 'metrics.jsonl').write_text('\n'.join(json.dumps(r) for r in rows) + '\n')
  meta = {'format_version': 1, 'task': task, 'status': 'completed', 'n_params': 1000,
          'corpus': {'tokenizer': {'name': 'byte', 'vocab_size': 256}},
          'dataset': {'name': 'x', 'fingerprint': '0'}, 'model': {'vocab_size': 256},
          'final': {'step': config['steps'], 'eval_loss': rows[-1]['eval_loss']}}
  if config.get('init_from'):
    meta['forked_from'] = {'workdir': config['init_from'], 'step': start}
  (d / 'run.json').write_text(json.dumps(meta))
  return d


def test_csv_and_run_directory_readers_agree_on_the_same_curve(tmp_path):
  """A warmup that ends at the first row, as in Luo et al.'s data: the CSV's assumed warmup is
  then the run's own, and only the LR between rows (linear, not cosine) differs."""
  run = write_run(tmp_path, 'cos', _config(warmup_steps=100))
  rows = [json.loads(line) for line in (run / 'metrics.jsonl').read_text().splitlines()]
  lr = {r['step']: r['lr'] for r in rows if 'lr' in r}
  evals = [r for r in rows if 'eval_loss' in r and r['step'] > 0]
  csv = tmp_path / 'cos.csv'
  csv.write_text('step,lr,loss\n' + ''.join(f'{r["step"]},{lr[r["step"]]!r},{r["eval_loss"]!r}\n'
                                            for r in evals))
  from_run, from_csv = curves.read(str(run)), curves.read(str(csv))
  np.testing.assert_array_equal(from_run.step_P, from_csv.step_P)
  np.testing.assert_array_equal(from_run.loss_P, from_csv.loss_P)
  np.testing.assert_allclose(from_csv.lr_T[from_csv.step_P], from_run.lr_T[from_run.step_P],
                             rtol=1e-6)  # the logged LR is scaling.optim's float32
  law = lambda c: curve_laws.multipower(c.lr_T, c.step_P, **TRUTH)
  np.testing.assert_allclose(law(from_csv), law(from_run), rtol=1e-3)
  np.testing.assert_allclose(law(from_run), from_run.loss_P, rtol=1e-6)


def test_train_rows_average_the_law_over_their_window(tmp_path):
  run = write_run(tmp_path, 'cos', _config())
  c = curves.read(str(run), loss='train_loss', min_step=0)
  assert c.first_P[0] == 0 and c.last_P[0] == 49 and c.step_P[0] == 50
  np.testing.assert_array_equal(c.first_P[1:], c.step_P[:-1])
  t_N, average = c.design()
  law = average @ curve_laws.multipower(c.lr_T, np.maximum(t_N, 1), **TRUTH)
  np.testing.assert_allclose(law[1:], c.loss_P[1:], rtol=2e-4)


def test_a_branch_takes_its_trunks_lr_before_the_fork(tmp_path):
  trunk = write_run(tmp_path, 'trunk', _config(schedule='constant'))
  branch = write_run(tmp_path, 'cool', _config(schedule='wsd', cooldown_fraction=0.3, lr=1e-3,
                                               init_from=str(trunk), init_step=600), start=600)
  c = curves.read(str(branch))
  trunk_lr = curves.read(str(trunk)).lr_T
  np.testing.assert_array_equal(c.lr_T[:601], trunk_lr[:601])
  assert c.lr_T[601] == pytest.approx(1e-3, rel=1e-6)  # its own LR from the fork on
  assert c.lr_T[1000] == pytest.approx(1e-4 + 0.9e-3 / 300, rel=1e-6)  # and its own cooldown
  assert c.step_P[0] == 700  # its row at the fork is the trunk's model


def test_curves_of_different_tasks_are_refused(tmp_path, capsys):
  a = write_run(tmp_path, 'a', _config())
  b = write_run(tmp_path, 'b', _config(schedule='constant'), task='diffusion')
  code, _, err = run_cli(capsys, 'fit', f'--curves={a},{b}', f'--out={tmp_path / "out"}',
                   '--bootstrap=0')
  assert code == 2 and 'mix 2 tasks' in err and err.count('\n') == 1, err
  assert not (tmp_path / 'out').exists()


def test_a_branch_whose_trunk_is_gone_is_one_line(tmp_path, capsys):
  trunk = write_run(tmp_path, 'trunk', _config(schedule='constant'))
  branch = write_run(tmp_path, 'cool', _config(schedule='wsd', init_from=str(trunk),
                                               init_step=600), start=600)
  (trunk / 'run.json').rename(tmp_path / 'moved.json')
  for f in trunk.iterdir():
    f.unlink()
  trunk.rmdir()
  code, _, err = run_cli(capsys, 'fit', f'--curves={branch}', f'--out={tmp_path / "out"}',
                   '--bootstrap=0')
  assert code == 2 and 'which is not there' in err and err.count('\n') == 1, err


def test_the_curve_command_imports_neither_jax_nor_scaling_nor_configs():
  code = ('import sys, analysis.curve; bad = [m for m in sys.modules if m.split(".")[0] in '
          '("jax", "scaling", "configs", "ml_collections")]; '
          'sys.exit(f"imported {bad}" if bad else 0)')
  subprocess.run([sys.executable, '-c', code], check=True, cwd=pathlib.Path(__file__).parents[1])
