"""Luo et al.'s accuracy from the vendored curves (python -m experiments.reproduce_mpl)."""

import json
import shutil

import pytest

from analysis import cli
from experiments import reproduce_mpl


def test_reproduces_the_published_accuracy(tmp_path, capsys):
  reproduce_mpl.main(['--out', str(tmp_path)])  # exits 1 if a check fails
  out = capsys.readouterr().out
  assert out.count('PASS') == 6 and 'FAIL' not in out
  report = json.loads((tmp_path / 'mpl.json').read_text())
  for size, expected in (('25M', 0.00371), ('100M', 0.00436)):
    rows = report[size]['rows']
    assert round(rows['published_params']['mae'], 5) == expected
    assert rows['refit']['r2'] >= 0.997 and rows['annealing']['mae'] > rows['refit']['mae']
    assert set(report[size]['refit']['params']) == {'L0', 'A', 'alpha', 'B', 'C', 'beta', 'gamma'}
  assert (tmp_path / 'test_curves_25M.png').read_bytes()[:4] == b'\x89PNG'


def test_a_changed_curve_is_one_line_and_nothing_written(tmp_path, capsys):
  data = tmp_path / 'multipower'
  shutil.copytree(reproduce_mpl.DATA, data)
  with open(data / 'csv_25' / 'wsdcon_9.csv', 'a') as f:
    f.write('14272,9e-05,3.3890\n')
  with pytest.raises(SystemExit) as exit_:
    cli.run(reproduce_mpl.main, ['--data', str(data), '--out', str(tmp_path / 'out')])
  err = capsys.readouterr().err
  assert exit_.value.code == 2 and 'sha256' in err and err.count('\n') == 1, err
  assert not (tmp_path / 'out').exists()
