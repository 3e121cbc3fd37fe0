"""Porian et al.'s Table 1 from the vendored points (python -m experiments.reproduce_porian)."""

import json
import pickle
import shutil
import subprocess

import pandas as pd
import pytest

from analysis import cli
from experiments import convert_porian
from experiments import reproduce_porian


def test_reproduces_table1(tmp_path, capsys):
  reproduce_porian.main(['--out', str(tmp_path)])  # exits 1 if a Table 1 row fails
  out = capsys.readouterr().out
  assert out.count('PASS') == 10 and 'FAIL' not in out
  rows = json.loads((tmp_path / 'porian.json').read_text())['configurations']
  assert len(rows) == 15 and all(r['pass'] for r in rows if r['table'] == 'Table 1')
  kaplan = next(r for r in rows if r['name'] == 'rw-kaplan')
  assert kaplan['a'] == pytest.approx(0.835, abs=0.02)  # one parabola through all points: 1.209
  assert (tmp_path / 'figure1.png').read_bytes()[:4] == b'\x89PNG'


def _cli(capsys, *args) -> tuple[int, str]:
  """Exit status and stderr of the command line, run in this process."""
  try:
    cli.run(reproduce_porian.main, list(args))
    code = 0
  except SystemExit as e:
    code = e.code
  return code, capsys.readouterr().err


def test_checksum_mismatch_is_one_clear_line(tmp_path, capsys):
  data = tmp_path / 'porian'
  shutil.copytree(reproduce_porian.DATA, data)
  with open(data / 'rw-tuned.csv', 'a') as f:
    f.write('1e17,1e6,1e10,1e17,3.0\n')
  code, err = _cli(capsys, f'--data={data}', '--config=rw-tuned', f'--out={tmp_path / "out"}')
  assert code == 2 and not (tmp_path / 'out').exists()
  assert err.count('\n') == 1 and 'does not match manifest.json' in err


def test_unknown_configuration_is_one_clear_line(tmp_path, capsys):
  code, err = _cli(capsys, '--config=rw-kaplan,rw-nope', f'--out={tmp_path}')
  assert code == 2 and err.count('\n') == 1
  assert "unknown configuration 'rw-nope'" in err and 'rw-kaplan' in err


class _Exploit:
  def __reduce__(self):
    return (subprocess.call, (['true'],))


def test_restricted_unpickler_reads_pandas_and_refuses_the_rest():
  frame = pd.DataFrame([[1.0, 2.0]])  # integer labels: no pyarrow strings
  assert convert_porian.restricted_load(pickle.dumps(frame)).equals(frame)
  with pytest.raises(pickle.UnpicklingError, match='refused to load subprocess.call'):
    convert_porian.restricted_load(pickle.dumps(_Exploit()))


def test_vendored_points_follow_the_paper_conventions():
  manifest = json.loads((reproduce_porian.DATA / 'manifest.json').read_text())
  assert manifest['commit'].startswith('0dc60d9') and 'MIT' in manifest['licence']
  for name, entry in manifest['configs'].items():
    table = pd.read_csv(reproduce_porian.DATA / entry['file'])
    assert (table['C'] == table['budget']).all()
    ratio = table['C'] / (table['N'] * table['D'])
    assert ratio.between(6 - 1e-6, 6 + 1e-6).all(), name  # C = 6ND with the row's N
  assert 'non-embedding' in manifest['configs']['rw-kaplan']['N']
  assert 'output head' in manifest['configs']['owt2-tuned']['N']
