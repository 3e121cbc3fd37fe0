"""python -m analysis.curve fit | predict | choose, on CSV curves: the interface (names and JSON
keys), and bad input as one line, exit status 2 and nothing written."""

import json
import pathlib

import numpy as np
import pytest

from analysis import cli
from analysis import curve
from analysis import curve_laws
from analysis import schedules

TRUTH = dict(L0=1.5, A=0.5, alpha=0.4, B=40.0, C=2.0, beta=0.6, gamma=0.6)
SPECS = {'constant': 'constant:steps=3000,peak=3e-3,warmup=20',
         'cosine': 'cosine:steps=3000,peak=3e-3,final=3e-4,warmup=20',
         'twostage': 'twostage:steps=3000,peak=3e-3,final=3e-4,warmup=20,switch=1500',
         'wsd': 'wsd:steps=3000,peak=3e-3,final=3e-4,warmup=20,cooldown=0.2'}
METRICS = ('r2', 'mae', 'rmse', 'pred_e', 'worst_e', 'final_error')


def _write_csv(path: pathlib.Path, step, lr, loss) -> pathlib.Path:
  rows = ['step,lr,loss'] + [f'{s},{float(l)!r},{float(y)!r}' for s, l, y in zip(step, lr, loss)]
  path.write_text('\n'.join(rows) + '\n')
  return path


def _law_csv(folder: pathlib.Path, name: str, noise: float = 0.002, seed: int = 0):
  """Rows every 100 steps of a schedule; the losses drawn from the law on the schedule those rows
  describe (analysis.schedules.from_rows), so the truth is the law of what the CSV says."""
  step = np.arange(100, 3001, 100)
  lr = schedules.from_spec(SPECS[name])[step]
  loss = curve_laws.multipower(schedules.from_rows(step, lr), step, **TRUTH)
  loss = loss * np.exp(noise * np.random.default_rng(seed).standard_normal(len(step)))
  return _write_csv(folder / f'{name}.csv', step, lr, loss)


def run_cli(capsys, *args) -> tuple[int, str, str]:
  """Exit status, stdout and stderr of the command line, run in this process."""
  try:
    cli.run(curve.main, list(args))
    code = 0
  except SystemExit as e:
    code = e.code
  captured = capsys.readouterr()
  return code, captured.out, captured.err


@pytest.fixture(scope='module')
def fitted(tmp_path_factory):
  folder = tmp_path_factory.mktemp('curves')
  paths = {name: _law_csv(folder, name, seed=i) for i, name in enumerate(SPECS)}
  out = folder / 'fit'
  curve.main(['fit', f'--curves={paths["constant"]},{paths["cosine"]},{paths["twostage"]}',
              '--law=multipower',
              f'--out={out}', '--bootstrap=30'])
  return paths, out


def test_fit_writes_named_parameters_with_intervals_and_per_curve_metrics(fitted):
  _, out = fitted
  report = json.loads((out / 'curve_fit.json').read_text())
  assert report['law'] == 'multipower' and report['converged']
  assert set(report['params']) == set(TRUTH) == set(report['ci95'])
  assert set(report['curves']) == {'constant', 'cosine', 'twostage'}
  assert all(set(METRICS) <= set(m) for m in report['curves'].values())
  assert report['mean']['r2'] > 0.99
  assert (out / 'curve_fit.png').read_bytes()[:4] == b'\x89PNG'


def test_predict_scores_held_out_curves(fitted, tmp_path, capsys):
  paths, out = fitted
  code, stdout, _ = run_cli(capsys, 'predict', f'--fit={out / "curve_fit.json"}',
                         f'--curves={paths["wsd"]}', f'--out={tmp_path / "p"}')
  assert code == 0 and 'mean' in stdout
  report = json.loads((tmp_path / 'p' / 'curve_predict.json').read_text())
  assert set(report['curves']) == {'wsd'} and set(METRICS) <= set(report['mean'])
  assert abs(report['curves']['wsd']['final_error']) < 0.01
  assert (tmp_path / 'p' / 'curve_predict.png').is_file()


def test_predict_a_schedule_prints_and_writes_its_band(fitted, tmp_path, capsys):
  _, out = fitted
  spec = 'wsd:steps=6000,peak=3e-3,final=3e-4,warmup=20,cooldown=0.3,shape=sqrt'
  code, stdout, _ = run_cli(capsys, 'predict', f'--fit={out / "curve_fit.json"}',
                         f'--schedule={spec}', f'--out={tmp_path / "s"}')
  assert code == 0 and '95% interval' in stdout
  report = json.loads((tmp_path / 's' / 'curve_predict.json').read_text())['schedule']
  assert report['step'][-1] == 6000 and len(report['loss']) == len(report['ci95'])
  lo, hi = report['ci95'][-1]
  truth = curve_laws.multipower(schedules.from_spec(spec), np.array([6000]), **TRUTH)[0]
  assert lo < report['loss'][-1] < hi and abs(report['loss'][-1] - truth) < 0.01


def test_choose_prints_the_best_cooldown_and_its_gain(fitted, tmp_path, capsys):
  _, out = fitted
  code, stdout, _ = run_cli(capsys, 'choose', f'--fit={out / "curve_fit.json"}', '--steps=3000',
                         '--peak=3e-3', '--warmup=20', f'--out={tmp_path / "c"}')
  assert code == 0 and 'best WSD' in stdout and 'gain over cosine' in stdout
  choice = json.loads((tmp_path / 'c' / 'schedule_choice.json').read_text())
  assert choice['best']['final_loss'] == min(r['final_loss'] for r in choice['table'])


def _bad_csv(tmp_path, kind) -> pathlib.Path:
  step, lr, loss = np.arange(100, 1001, 100), np.full(10, 3e-3), np.linspace(3, 2, 10)
  if kind == 'short':
    step, lr, loss = step[:2], lr[:2], loss[:2]
  elif kind == 'steps':
    step = step.copy()
    step[5] = step[3]
  elif kind == 'lr':
    lr = lr.copy()
    lr[4] = -1e-3
  elif kind == 'loss':
    loss = loss.copy()
    loss[7] = np.nan
  return _write_csv(tmp_path / f'{kind}.csv', step, lr, loss)


@pytest.mark.parametrize('kind,message', [
    ('short', 'at least 3'), ('steps', 'steps must increase'), ('lr', 'lr -0.001'),
    ('loss', 'loss nan'), ('constant', 'no curve\'s LR falls')])
def test_bad_curve_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, kind, message):
  path = _bad_csv(tmp_path, kind)
  out = tmp_path / 'out'
  code, _, err = run_cli(capsys, 'fit', f'--curves={path}', f'--out={out}', '--bootstrap=0')
  assert code == 2 and message in err and err.count('\n') == 1, err
  assert not out.exists()


def test_bad_schedule_spec_is_one_line_exit_2_and_nothing_written(fitted, tmp_path, capsys):
  _, fit_dir = fitted
  out = tmp_path / 'out'
  code, _, err = run_cli(capsys, 'predict', f'--fit={fit_dir / "curve_fit.json"}',
                      '--schedule=wsd:steps=100,peak=1e-3,shape=square', f'--out={out}')
  assert code == 2 and 'shape must be one of' in err and err.count('\n') == 1, err
  assert not out.exists()


def test_a_fit_file_that_is_not_a_curve_fit_is_one_line(tmp_path, capsys):
  bogus = tmp_path / 'fit.json'
  bogus.write_text(json.dumps({'law': 'chinchilla', 'params': {'E': 1.0}}))
  for path in (bogus, tmp_path / 'missing.json'):
    code, _, err = run_cli(capsys, 'predict', f'--fit={path}',
                           '--schedule=constant:steps=100,peak=1e-3', f'--out={tmp_path / "o"}')
    assert code == 2 and err.count('\n') == 1 and '--fit=' in err, err
  assert not (tmp_path / 'o').exists()
