"""Approach 2's estimators, budgets and intervals against planted optima (analysis/isoflop.py,
analysis/approach2.py)."""

import json

import numpy as np
import pandas as pd
import pytest

from analysis import allocation
from analysis import approach2
from analysis import cli
from analysis import errors
from analysis import figures
from analysis import fit
from analysis import isoflop
from analysis import laws
from analysis import runs
from experiments import runspec
from sweep_files import nano, write_sweep

FIT = dict(E=1.817, A=477.8, B=2143.0, alpha=0.3473, beta=0.3672)
A_TRUE = laws.exponents(FIT['alpha'], FIT['beta'])[0]
BUDGETS = np.geomspace(1e18, 1e22, 5)


def n_opt(C):
  return allocation.optimal_6nd(np.asarray(C, float), **FIT)[0]


def study(rng, budgets=BUDGETS, sigma=0.0, far=True, sizes=np.arange(-4, 5), spacing=1.5):
  """Chinchilla-law IsoFLOP profiles (C = 6ND) around the closed-form optimum, at a random offset;
  far=True adds sizes 30x and 100x too large, read 5 nats above the law (read early)."""
  rows = []
  for C in budgets:
    Ns = n_opt(C) * spacing**(sizes + rng.uniform(-0.5, 0.5))
    if far:
      Ns = np.concatenate([Ns, n_opt(C) * np.array([30.0, 100.0])])
    for i, N in enumerate(Ns):
      loss = laws.chinchilla(N, C / (6 * N), **FIT) + 5.0 * (i >= len(sizes))
      rows.append({'budget': C, 'C': C, 'N': N, 'D': C / (6 * N),
                   'loss': loss + sigma * rng.normal()})
  return pd.DataFrame(rows)


def test_budget_labels_are_complete_linkage():
  # a chain 4% apart: single linkage would make one group spanning 12%
  C = [1e19, 1.04e19, 1.08e19, 1.12e19, 1e20, 1.01e20]
  labels = isoflop.budget_labels(C, rtol=0.05)
  assert len(set(labels[:4])) == 2 and labels[4] == labels[5] and labels[4] == labels.max()
  for g in set(labels):
    members = np.array(C)[labels == g]
    assert members.max() / members.min() <= 1.05


def test_minimum_hand_worked():
  u = np.log(np.geomspace(1e6, 1e9, 9))
  u0 = u[4] + 0.1
  loss = 3 + 0.2 * (u - u0)**2
  assert isoflop.minimum(u, loss, 'parabola') == pytest.approx(u0, abs=1e-9)
  # Akima is not exact on a parabola: a cubic between sizes 2.4x apart, within 2% in N
  assert isoflop.minimum(u, loss, 'akima') == pytest.approx(u0, abs=0.02)
  assert np.isnan(isoflop.minimum(u, loss - 0.5 * (u > u0) * (u - u0)**2 * 2, 'parabola'))
  assert np.isnan(isoflop.minimum(u, (u - u[0])**2, 'akima'))  # best size is the smallest


@pytest.mark.parametrize('estimator', isoflop.ESTIMATORS)
def test_estimators_find_the_minimum_despite_far_off_points(estimator):
  rng = np.random.default_rng(0)
  for _ in range(3):
    r = approach2.approach2(study(rng), estimator, n_resamples=5)
    assert (r.optima['status'] == 'ok').all()
    np.testing.assert_allclose(r.optima['N'], n_opt(r.optima['C']), rtol=0.02)
  # the same points through one parabola (the old estimator) miss by far more than 2%
  g = study(rng, budgets=[1e20])
  c = np.polyfit(np.log(g['N']), g['loss'], 2)
  assert abs(-c[1] / (2 * c[0]) - np.log(n_opt(1e20))) > 0.1


def test_unbracketed_budget_is_dropped_with_a_warning():
  rng = np.random.default_rng(1)
  table = study(rng, far=False)
  top = table['budget'] == BUDGETS[-1]
  table = table[~top | (table['N'] < n_opt(BUDGETS[-1]) / 1.2)]  # only sizes below its optimum
  r = approach2.approach2(table, 'parabola', n_resamples=20)
  assert list(r.optima['status']) == ['ok'] * 4 + ['unbracketed']
  assert r.optima['weight'].iloc[-1] == 0
  assert any('1e+22' in w and 'smallest or largest size' in w for w in r.warnings)
  assert r.a == pytest.approx(A_TRUE, abs=0.02)


def test_power_law_is_weighted_by_bootstrap_precision():
  r = approach2.approach2(study(np.random.default_rng(2), sigma=0.01), 'parabola', n_resamples=50)
  ok = r.optima[r.optima['status'] == 'ok']
  assert np.allclose(ok['weight'], 1 / ok['log_n_std']**2)
  slope = np.polyfit(np.log(ok['C']), np.log(ok['N']), 1, w=np.sqrt(ok['weight']))[0]
  assert r.a == pytest.approx(slope, rel=1e-9)
  assert 'bootstrap' in r.to_json()['weighting'] and r.to_json()['a_ci95'][0] < r.a


def test_bootstrap_interval_covers_true_a_in_90_of_100_studies():
  rng = np.random.default_rng(3)
  covered = 0
  for seed in range(100):
    r = approach2.approach2(study(rng, budgets=BUDGETS[::2].tolist() + [BUDGETS[1]], sigma=0.01,
                                far=False, sizes=np.arange(-3, 4)), 'parabola', n_resamples=40,
                          seed=seed)
    lo, hi = r.ci95('a')
    covered += lo <= A_TRUE <= hi
  assert covered >= 90


def test_seed_noise_resampling_and_akima_agree_with_points():
  table = study(np.random.default_rng(4), sigma=0.002)
  noise = approach2.approach2(table, 'akima', n_resamples=200, noise=0.002)
  points = approach2.approach2(table, 'akima', n_resamples=20)
  assert noise.a == points.a  # the point estimate does not depend on the resampling
  assert noise.a == pytest.approx(A_TRUE, abs=0.01)
  assert 'Gaussian noise of 0.002' in noise.settings['resampling']


def test_grouping_without_a_budget_column():
  table = study(np.random.default_rng(5), far=False).drop(columns='budget')
  table['C'] *= 1 + 0.01 * np.sin(np.arange(len(table)))  # C within 2% of each budget
  r = approach2.approach2(table, 'parabola', n_resamples=5)
  assert len(r.optima) == 5 and 'complete linkage' in r.settings['grouping']
  np.testing.assert_allclose(r.optima['N'], n_opt(BUDGETS), rtol=0.03)


def test_bad_inputs_one_clear_line():
  table = study(np.random.default_rng(6), far=False)
  two = table[(table['budget'] != BUDGETS[0]) | (table['N'] < n_opt(BUDGETS[0]) * 0.9)]
  two = two.drop(two[(two['budget'] == BUDGETS[0])].index[2:])
  with pytest.raises(errors.InputError, match=r'budget 1e\+18 has 2 distinct sizes .* at least 3'):
    approach2.approach2(two)
  lenient = approach2.approach2(two, n_resamples=5, strict=False)  # a sweep still running
  assert len(lenient.optima) == 4 and 'fewer than 3 sizes' in lenient.warnings[0]
  scattered = pd.DataFrame({'N': [1e6, 2e6, 3e6], 'C': [1e18, 2e18, 4e18], 'D': [1, 1, 1.0],
                            'loss': [3, 2, 3.0]})
  with pytest.raises(errors.InputError, match='no budget column .* --columns=budget=COL'):
    approach2.approach2(scattered)
  with pytest.raises(errors.InputError, match="--isoflop='spline'"):
    approach2.approach2(table, 'spline')


def test_figures(tmp_path):
  r = approach2.approach2(study(np.random.default_rng(7)), 'akima', n_resamples=5)
  paths = figures.isoflop_profiles(r, tmp_path) + figures.optima_vs_compute({'x': r}, tmp_path)
  assert all(p.read_bytes()[:4] in (b'\x89PNG', b'%PDF') for p in paths) and len(paths) == 4


def write_study(root, budgets=BUDGETS[:4], record_budget=True):
  """Run directories (docs/run-format.md) of an IsoFLOP sweep on the law, C = 7ND (Chinchilla
  convention), cosine runs of one length each, eval rows along each run."""
  for C in budgets:
    for i, N in enumerate(n_opt(C) * 1.8**np.arange(-2, 3)):
      d = root / f'C{C:.0e}-{i}'
      d.mkdir(parents=True)
      (d / 'config.json').write_text(json.dumps({'schedule': 'cosine', 'budget': C}))
      D_end = C / (7 * N)
      rows = []
      for k, D in enumerate(D_end * np.linspace(0, 1, 9)):
        loss = laws.chinchilla(N, D, **FIT) if D else 11.0  # step 0: the initialised model
        flops = {'kaplan': 6 * N * D, 'chinchilla': 7 * N * D}
        rows.append({'step': k, 'tokens': D, 'flops': flops, 'eval_loss': loss})
      (d / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
      final = {**rows[-1], 'step': 8}
      (d / 'run.json').write_text(json.dumps({
          'format_version': 1, 'task': 'lm', 'n_params': N, 'n_params_nonembedding': N,
          'flops_per_token': {'kaplan': 6 * N, 'chinchilla': 7 * N}, 'steps': 8,
          'status': 'completed', 'final': final, 'dataset': {'name': 'x', 'fingerprint': '0'},
          **({'budget': C} if record_budget else {})}))


def test_fit_reports_three_approaches_from_runs(tmp_path, capsys):
  write_study(tmp_path / 'runs')
  code = 0
  try:
    cli.run(fit.main, [f'--runs={tmp_path / "runs"}', f'--out={tmp_path / "out"}',
                       '--isoflop=akima', '--bootstrap=20', '--cold-share=0'])
  except SystemExit as e:
    code = e.code
  out, err = capsys.readouterr()
  assert code == 0, err
  rows = json.loads((tmp_path / 'out' / 'fit.json').read_text())['approaches']['rows']
  assert [r['applies'] for r in rows] == [True, True, True]
  assert rows[0]['a'] == pytest.approx(A_TRUE, abs=0.05)  # the envelope of 20 runs: coarse
  assert 'biased towards small models' in rows[0]['notes'][0]  # cosine, one length per size
  assert rows[1]['grouping'] == 'the budget recorded for each point'
  assert rows[1]['a'] == pytest.approx(A_TRUE, abs=0.01) and rows[1]['estimator'] == 'akima'
  assert rows[1]['a_ci95'][0] <= rows[1]['a'] <= rows[1]['a_ci95'][1]
  assert rows[2]['a'] == pytest.approx(A_TRUE, abs=0.01)
  assert '2. IsoFLOP profiles' in out and (tmp_path / 'out' / 'isoflop.png').is_file()


def test_fit_csv_isoflop_bad_inputs_one_line(tmp_path, capsys):
  table = study(np.random.default_rng(8), far=False)
  table.drop(columns='budget').assign(C=1e18 * 1.1**np.arange(len(table))).to_csv(
      tmp_path / 'scattered.csv', index=False)
  few = table[(table['budget'] != BUDGETS[0]) | (table['N'] < 0.4 * n_opt(BUDGETS[0]))]
  few.rename(columns={'budget': 'launched_at'}).to_csv(tmp_path / 'few.csv', index=False)
  for csv, extra, message in (
      ('scattered.csv', [], 'no budget column'),
      ('few.csv', ['--columns=budget=launched_at'], 'distinct sizes'),
      ('few.csv', ['--columns=budget=nope'], "'nope'")):
    try:
      cli.run(fit.main, [f'--csv={tmp_path / csv}', f'--out={tmp_path / "out"}',
                         '--isoflop=parabola', *extra])
      code = 0
    except SystemExit as e:
      code = e.code
    err = capsys.readouterr().err
    assert code == 2 and err.count('\n') == 1 and message in err, err
    assert not (tmp_path / 'out' / 'fit.json').exists()


def test_sweep_records_each_runs_budget(tmp_path):
  """experiments.runspec passes the sweep's budget to the run as config.budget (config.json,
  run.json's `budget`), which analysis.runs reads back for Approach 2's grouping."""
  study = runspec.load(write_sweep(tmp_path, [nano('a', budget=1e10), nano('b', overrides={
      'steps': 5})]))
  a, b = study.runs
  assert a.overrides['budget'] == 1e10 and '--config.budget=10000000000.0' in a.args('out')
  assert 'budget' not in b.overrides
  write_study(tmp_path / 'runs', budgets=BUDGETS[:1])
  assert (runs.load(tmp_path / 'runs').table['budget'] == BUDGETS[0]).all()


def test_each_points_stderr_is_its_noise_and_auto_picks_it():
  table = study(np.random.default_rng(9), sigma=0.002, far=False)
  by_column = approach2.approach2(table.assign(loss_stderr=0.002), noise='stderr', n_resamples=50)
  by_value = approach2.approach2(table, noise=0.002, n_resamples=50)
  assert by_column.a == by_value.a and by_column.ci95('a') == by_value.ci95('a')  # same draws
  assert "each point's loss_stderr" in by_column.settings['resampling']
  assert approach2.noise_for(table.assign(loss_stderr=0.01), 'auto') == ('stderr', None)
  assert approach2.noise_for(table, 'points') == (None, None)
  assert approach2.noise_for(table, '0.01') == (0.01, None)
  noise, note = approach2.noise_for(table.assign(loss_stderr=np.nan), 'auto')
  assert noise is None and 'no loss noise known' in note
  for spec, message in (('stderr', 'needs a finite loss_stderr'), ('-1', 'σ > 0'),
                        ('lots', "--isoflop-resampling='lots'")):
    with pytest.raises(errors.InputError, match=message):
      approach2.noise_for(table, spec)
