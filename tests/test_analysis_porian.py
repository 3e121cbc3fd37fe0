"""Porian et al.'s Table 1 from the command line itself: `python -m analysis.fit --csv` with its
default Approach 2 estimator, on every configuration vendored in data/porian/.

Each configuration is given its dataset's seed noise (manifest.json's seed_noise_nats, the σ of
the paper's bootstrap) with --isoflop-resampling; Approach 2 does not depend on the law fitted
beside it, so the cheap one-variable law keeps the test fast, and so does not saving the figures
(most of the command's time) except in the last test.
"""

import json

import pytest

from analysis import cli
from analysis import figures
from analysis import fit
from analysis import isoflop
from experiments import reproduce_porian

CONFIGS = reproduce_porian.manifest(reproduce_porian.DATA)['configs']


@pytest.mark.parametrize('name', list(CONFIGS))
def test_fit_csv_reproduces_the_published_exponent(tmp_path, capsys, monkeypatch, name):
  monkeypatch.setattr(figures, 'save', lambda *a, **k: [])
  entry = CONFIGS[name]
  cli.run(fit.main, [f'--csv={reproduce_porian.DATA / entry["file"]}', '--law=power',
                     f'--isoflop-resampling={entry["seed_noise_nats"]}', f'--out={tmp_path}'])
  row = json.loads((tmp_path / 'fit.json').read_text())['approaches']['rows'][1]
  assert row['estimator'] == isoflop.ESTIMATORS[0] == 'akima'  # the default, recorded
  assert row['noise'] == entry['seed_noise_nats'] and 'seed-noise' in row['resampling']
  published = entry['published']
  assert reproduce_porian.passes(row['a'], published), (row['a'], published)
  lo, hi = row['a_ci95']
  assert lo < row['a'] < hi
  assert '2. IsoFLOP profiles' in capsys.readouterr().out


def test_without_a_noise_the_points_are_resampled_and_the_fit_says_so(tmp_path, capsys):
  cli.run(fit.main, [f'--csv={reproduce_porian.DATA / CONFIGS["rw-tuned"]["file"]}',
                     '--law=power', f'--out={tmp_path}'])
  row = json.loads((tmp_path / 'fit.json').read_text())['approaches']['rows'][1]
  assert row['noise'] is None and row['resampling'].startswith('points drawn')
  err = capsys.readouterr().err
  assert 'warning: Approach 2: no loss noise known' in err and '--isoflop-resampling=SIGMA' in err
  assert any('no loss noise known' in n for n in row['notes'])
  assert (tmp_path / 'isoflop.png').read_bytes()[:4] == b'\x89PNG'
