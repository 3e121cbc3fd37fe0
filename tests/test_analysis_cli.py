"""The fit and plan command lines: outputs, hand-worked plans, and one-line errors on bad input."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from analysis import allocation
from analysis import cli
from analysis import engine
from analysis import fit
from analysis import fitjson
from analysis import hardware
from analysis import laws
from analysis import outdir
from analysis import plan
from analysis import study as study_lib

TRUTH = dict(E=1.7, A=400.0, B=1500.0, alpha=0.33, beta=0.30)
FIT_KEYS = ['law', 'n_points', 'params', 'objective', 'stderr', 'ci95', 'a', 'b', 'converged']


def run(main, argv, capsys):
  try:
    cli.run(main, argv)
    code = 0
  except SystemExit as e:
    code = e.code
  out, err = capsys.readouterr()
  return code, out, err


def write_csv(path, n=30, seed=0, edits=(), ratio=6.0):
  """Points with renamed columns and no D column (so D = C / ratio·N); edits: ((column, row),
  value). A loss_stderr column of 0.1% of the loss rides along."""
  rng = np.random.default_rng(seed)
  N = np.geomspace(5e7, 5e9, n)
  D = N * rng.uniform(2, 200, n)
  loss = laws.chinchilla(N, D, **TRUTH) * (1 + 0.002 * rng.standard_normal(n))
  df = pd.DataFrame({'params': N, 'tokens': D, 'flops': ratio * N * D, 'final_loss': loss,
                     'se': 0.001 * loss})
  for (col, row), value in edits:
    df.loc[row, col] = value
  df.to_csv(path, index=False)
  return path


def test_fit_csv_writes_fit_json_bootstrap_and_plots(tmp_path, capsys):
  # C = 12·N·D, twice 6ND: the allocation must be the 6ND one at half the budget
  csv = write_csv(tmp_path / 'points.csv', ratio=12.0)
  out = tmp_path / 'out'
  code, stdout, err = run(fit.main, [
      f'--csv={csv}', '--law=chinchilla', f'--out={out}', '--exclude-top-loss=2',
      '--columns', 'N=params,D=tokens,C=flops,loss=final_loss,loss_stderr=se',
      '--bootstrap=20', '--cold-share=0', '--seed=3', '--at-flops=1e22', '--backtest=1e20'],
                          capsys)
  assert code == 0, err
  result = json.loads((out / 'fit.json').read_text())
  assert list(result)[:len(FIT_KEYS)] == FIT_KEYS and result['n_points'] == 28
  for key in ('params', 'stderr', 'ci95'):
    assert list(result[key]) == ['E', 'A', 'B', 'alpha', 'beta']
  p = result['params']
  assert p['E'] == pytest.approx(TRUTH['E'], rel=0.05) and result['converged'] is True
  assert result['compute']['convention'] == 'table'
  assert result['compute']['ratio_range'] == pytest.approx([12.0, 12.0], rel=1e-12)
  at = result['at_flops']
  N_half, D_half = allocation.optimal_6nd(0.5e22, **p)
  assert at['C'] == 1e22 and at['N_opt'] == pytest.approx(N_half, rel=1e-3)
  assert at['tokens_per_param'] == pytest.approx(D_half / N_half, rel=1e-3)
  boot = pd.read_csv(out / 'bootstrap.csv')
  assert len(boot) == 20 and result['bootstrap'] == {
      'resamples': 20, 'converged': 20, 'cold_starts': 0, 'cold_other_basin_share': None,
      'resampled': 'points'}
  N_boot = allocation.optimal_6nd(0.5e22, **{k: boot[k].to_numpy() for k in p})[0]
  np.testing.assert_allclose(at['ci95']['N_opt'], np.percentile(N_boot, [2.5, 97.5]), rtol=1e-3)
  n_line = next(line for line in stdout.splitlines() if line.startswith('N_opt @ C=1e+22'))
  assert f'{at["N_opt"]:.5g}' in n_line and f'{at["ci95"]["N_opt"][0]:.4g}' in n_line
  # the fit's residuals beside the measurement noise: 0.1% of the loss by construction
  assert result['residuals']['eval_noise']['median_rel_stderr'] == pytest.approx(1e-3)
  assert 'median eval standard error 0.100% of the loss (28 of 28 points)' in stdout
  for name in ('loss_vs_compute', 'residuals', 'contours', 'optimal_allocation',
               'tokens_per_parameter'):
    assert (out / f'{name}.png').stat().st_size > 0 and (out / f'{name}.pdf').stat().st_size > 0
  held = pd.read_csv(out / 'backtest.csv')
  assert len(held) and (held['C'] > 1e20).all()
  np.testing.assert_allclose(held['rel_error'], held['predicted'] / held['loss'] - 1)
  assert held['rel_error'].abs().max() < 0.05
  assert f'mean |predicted/measured − 1| {held["rel_error"].abs().mean():.2%}' in stdout
  assert not [p for p in out.iterdir() if p.name.startswith('.')]  # no staging folder left


def test_6nd_convention_replaces_the_table_flops(tmp_path):
  csv = write_csv(tmp_path / 'points.csv', ratio=12.0)
  columns = {'N': 'params', 'D': 'tokens', 'C': 'flops', 'loss': 'final_loss'}
  study = study_lib.Study.from_csv(csv, columns, compute='6nd')
  table = study.table
  np.testing.assert_allclose(table['C'], 6 * table['N'] * table['D'], rtol=1e-15)
  assert study.units['C'] == 'C = 6ND'
  result = fitjson.law_json(study, study.fit(laws.CHINCHILLA))
  assert result['compute']['convention'] == '6nd'
  assert fitjson.at_flops_json(result, None, 1e22)['N_opt'] == pytest.approx(
      allocation.optimal_6nd(1e22, **result['params'])[0], rel=1e-9)


def test_integer_columns_are_read_as_float64_without_overflow(tmp_path):
  # 6·N·D = 6e26 overflows int64 (9.2e18): read as float64 it is exact to 1e-16
  N = np.array([10**8, 10**9, 10**10, 10**11, 10**12] * 2, dtype=np.int64)
  D = np.array([10**10, 10**12, 10**13, 10**14, 10**14] * 2, dtype=np.int64)
  loss = laws.chinchilla(N.astype(float), D.astype(float), **TRUTH)
  pd.DataFrame({'N': N, 'D': D, 'loss': loss}).to_csv(tmp_path / 'int.csv', index=False)
  assert pd.read_csv(tmp_path / 'int.csv')['N'].dtype == np.int64
  table = study_lib.Study.from_csv(tmp_path / 'int.csv').table
  assert all(table[k].dtype == np.float64 for k in ('N', 'D', 'C', 'loss'))
  np.testing.assert_allclose(table['C'], 6.0 * N.astype(float) * D.astype(float), rtol=1e-15)
  assert table['C'].max() == pytest.approx(6e26, rel=1e-15)


def identical_rows(path, n=10):
  pd.DataFrame({'params': [1e8] * n, 'flops': [1e19] * n, 'final_loss': [3.0] * n}).to_csv(
      path, index=False)
  return path


def one_size(path):
  pd.DataFrame({'params': [1e8] * 3, 'flops': [1e18, 1e19, 1e20], 'final_loss': [4, 3.5, 3.2]}
               ).to_csv(path, index=False)
  return path


@pytest.mark.parametrize('case, args, message', [
    ('missing column', {'columns': 'N=params,C=flops'}, "missing column 'loss'"),
    ('NaN', {'edits': [(('final_loss', 3), np.nan)]}, "column 'loss' has 1 NaN, inf or non-pos"),
    ('inf', {'edits': [(('flops', 5), np.inf)]}, "column 'C' has 1 NaN, inf or non-positive"),
    ('non-positive', {'edits': [(('params', 0), -5.0)]}, "column 'N' has 1 NaN, inf or non-pos"),
    ('too few points', {'n': 4}, 'cannot fit the chinchilla law'),
    ('unknown column', {'columns': 'N=size,C=flops,loss=final_loss'}, "column 'size'"),
    ('10 identical rows', {'write': identical_rows}, 'only 1 distinct value of (N, D)'),
    ('power law on one N', {'write': one_size, 'argv': ['--law=power', '--x=N']},
     'only 1 distinct value of (N); the power law has 3'),
    ('bad --at-flops', {'argv': ['--at-flops=-1']}, '--at-flops must be a finite number > 0'),
    ('bad --cold-share', {'argv': ['--cold-share=2']}, '--cold-share must be in [0, 1]'),
    ('bad --isoflop-resampling', {'argv': ['--isoflop-resampling=lots']},
     "--isoflop-resampling='lots': use auto, points, stderr or a noise σ > 0"),
])
def test_bad_csv_input_is_one_line_and_exit_2(tmp_path, capsys, case, args, message):
  del case
  columns = args.pop('columns', 'N=params,C=flops,loss=final_loss')
  argv = args.pop('argv', [])
  csv = args.pop('write', write_csv)(tmp_path / 'points.csv', **args)
  out = tmp_path / 'out'
  code, stdout, err = run(fit.main, [f'--csv={csv}', f'--out={out}', f'--columns={columns}',
                                     *argv], capsys)
  assert code == 2 and message in err and err.count('\n') == 1 and not stdout, err
  assert not out.exists()


def test_unwritable_out_is_refused_before_fitting(tmp_path, capsys):
  csv = write_csv(tmp_path / 'points.csv')
  (tmp_path / 'afile').write_text('')
  for out, message in ((tmp_path / 'afile', 'is a file'),
                       (tmp_path / 'afile' / 'sub', 'cannot be written')):
    code, stdout, err = run(fit.main, [f'--csv={csv}', f'--out={out}',
                                       '--columns=N=params,C=flops,loss=final_loss'], capsys)
    assert code == 2 and message in err and err.count('\n') == 1 and not stdout


def test_a_fit_that_did_not_converge_says_so_and_plan_refuses_it(tmp_path, capsys, monkeypatch):
  real_fit, real_boot = engine.fit, engine.bootstrap

  def half_the_resamples_fail(*a, **k):
    res = real_boot(*a, **k)
    res.converged[::2] = False
    return res
  monkeypatch.setattr(engine, 'fit', lambda *a, **k: dataclasses.replace(real_fit(*a, **k),
                                                                        converged=False))
  monkeypatch.setattr(engine, 'bootstrap', half_the_resamples_fail)
  csv = write_csv(tmp_path / 'points.csv')
  out = tmp_path / 'out'
  code, _, err = run(fit.main, [f'--csv={csv}', f'--out={out}', '--bootstrap=10',
                                '--cold-share=0', '--columns=N=params,C=flops,loss=final_loss'],
                     capsys)
  assert code == 0 and 'did not converge' in err
  assert 'only 5 of 10 bootstrap resamples converged (< 95%)' in err
  result = json.loads((out / 'fit.json').read_text())
  assert result['converged'] is False and result['bootstrap']['converged'] == 5
  assert len(pd.read_csv(out / 'bootstrap.csv')) == 5
  code, stdout, err = run(plan.main, [f'--fit={out / "fit.json"}', '--hardware=h100',
                                      '--flops=1e21'], capsys)
  assert code == 2 and 'did not converge' in err and not stdout


def test_empty_runs_folder_and_bad_flag_are_one_line(tmp_path, capsys):
  (tmp_path / 'empty').mkdir()
  code, _, err = run(fit.main, [f'--runs={tmp_path / "empty"}', f'--out={tmp_path / "o"}'], capsys)
  assert code == 2 and 'no run directories' in err and err.count('\n') == 1
  code, _, err = run(fit.main, ['--csv=x.csv', '--law=cubic', '--out=o'], capsys)
  assert code == 2 and "invalid choice: 'cubic'" in err and err.count('\n') == 1


SIX_ND = allocation.Compute.six_nd().to_json()


WIDE = {'N': [1.0, 1e15], 'D': [1.0, 1e15], 'C': [1.0, 1e30]}  # a range no plan here leaves


def write_fit(folder, params, law='chinchilla', samples=None, converged=True, compute=SIX_ND,
              fitted_range=WIDE):
  folder.mkdir(exist_ok=True)
  fit_json = {'law': law, 'params': params, 'converged': converged, 'fitted_range': fitted_range}
  if compute is not None:
    fit_json['compute'] = compute
  (folder / 'fit.json').write_text(json.dumps(fit_json))
  if samples is not None:
    pd.DataFrame(samples).to_csv(folder / 'bootstrap.csv', index=False)
  return folder / 'fit.json'


def test_plan_hand_worked():
  # A = B, alpha = beta = 1/2 -> N_opt = D_opt = sqrt(C / 6) = 1e10 at C = 6e20
  p = dict(E=1.0, A=1.0, B=1.0, alpha=0.5, beta=0.5)
  h100 = hardware.DEVICES['h100']
  got = allocation.plan(p, h100, mfu=0.4, flops=6e20, price_per_hour=2.0)
  hours = 6e20 / (989e12 * 0.4) / 3600
  assert got['N_opt'] == pytest.approx(1e10) and got['D_opt'] == pytest.approx(1e10)
  assert got['device_hours'] == pytest.approx(hours) and got['cost'] == pytest.approx(2 * hours)
  assert got['energy_MWh'] == pytest.approx(hours * 700 / 1e6)
  assert got['loss'] == pytest.approx(1.0 + 2e-5)
  # L_opt(C) = 1 + 2 (C/6)^(-1/4), so loss 1.02 needs C = 6e8
  assert allocation.plan(p, h100, mfu=0.4, target_loss=1.02)['FLOPs'] == pytest.approx(6e8, rel=1e-8)


def test_plan_uses_the_fits_flop_convention():
  # the fit's table counted C = 12ND: 1.2e21 of its FLOPs buy what 6e20 buy under 6ND
  p = dict(E=1.0, A=1.0, B=1.0, alpha=0.5, beta=0.5)
  twelve = allocation.Compute('table', np.array([1e6, 1e9]), np.array([12.0, 12.0]))
  got = allocation.plan(p, hardware.DEVICES['h100'], mfu=0.4, flops=1.2e21, compute=twelve)
  assert got['N_opt'] == pytest.approx(1e10, rel=1e-9) and got['D_opt'] == pytest.approx(1e10)
  assert got['device_hours'] == pytest.approx(1.2e21 / (989e12 * 0.4) / 3600)
  # loss 1.02 needs 6ND = 6e8, i.e. 1.2e9 of the table's FLOPs
  assert allocation.plan(p, hardware.DEVICES['h100'], mfu=0.4, target_loss=1.02,
                   compute=twelve)['FLOPs'] == pytest.approx(1.2e9, rel=1e-8)


def test_plan_cli_with_bootstrap_intervals(tmp_path, capsys):
  p = dict(E=1.0, A=1.0, B=1.0, alpha=0.5, beta=0.5)
  s = np.linspace(0.95, 1.05, 20)  # every parameter scaled by s: A = B and alpha = beta stay
  samples = {k: v * s for k, v in p.items()}
  path = write_fit(tmp_path / 'f', p, samples=samples)
  code, out, _ = run(plan.main, [f'--fit={path}', '--flops=6e20', '--hardware=tpu-v5p'], capsys)
  assert code == 0 and '(estimate)' in out and 'GPT-3' in out and 'C = 6ND' in out
  lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
  # G = 1 and a = 1/2 for every sample, so N_opt = sqrt(C / 6) = 1e10 in all of them
  assert lines['N_opt'].split()[1:] == ['1e+10', '[1e+10,', '1e+10]']
  # loss = s + 2 s (1e10)^(-s/2): its 95% interval over the 20 samples, worked out here
  loss = s + 2 * s * 1e10**(-s / 2)
  lo, hi = np.percentile(loss, [2.5, 97.5])
  assert lines['loss'].split()[1:] == [f'{1 + 2e-5:.4g}', f'[{lo:.4g},', f'{hi:.4g}]']


@pytest.mark.parametrize('argv, message', [
    (['--target-loss=0.9'], 'not above the fitted irreducible loss'),
    (['--flops=1e21', '--mfu=1.5'], '--mfu must be in (0, 1]'),
    (['--flops=-3'], '--flops must be a finite number > 0'),
    (['--flops=inf'], '--flops must be a finite number > 0'),
])
def test_plan_bad_input(tmp_path, capsys, argv, message):
  path = write_fit(tmp_path / 'f', dict(E=1.0, A=1.0, B=1.0, alpha=0.5, beta=0.5))
  code, out, err = run(plan.main, [f'--fit={path}', '--hardware=h100', *argv], capsys)
  assert code == 2 and message in err and err.count('\n') == 1 and not out


P = dict(E=1.0, A=1.0, B=1.0, alpha=0.5, beta=0.5)


@pytest.mark.parametrize('fit_kw, message', [
    ({'params': dict(E=1.0, x0=1.0, alpha=0.5), 'law': 'power'}, 'not a Chinchilla-law fit'),
    ({'converged': False}, 'did not converge'),
    ({'converged': None}, 'did not converge'),  # a fit.json from before converged was written
    ({'compute': None}, 'does not record its FLOP convention'),
    ({'samples': {'E': [1.0], 'A': [1.0], 'B': [1.0]}}, 'lacks the columns alpha, beta'),
    ({'samples': {k: [] for k in P}}, 'lacks rows'),
])
def test_plan_refuses_fits_it_cannot_trust(tmp_path, capsys, fit_kw, message):
  path = write_fit(tmp_path / 'f', fit_kw.pop('params', P), **fit_kw)
  code, out, err = run(plan.main, [f'--fit={path}', '--hardware=h100', '--flops=1e20'], capsys)
  assert code == 2 and message in err and err.count('\n') == 1 and not out


def test_a_failure_while_writing_leaves_no_half_written_folder(tmp_path):
  with pytest.raises(RuntimeError):
    with outdir.Staged(tmp_path / 'new') as stage:
      (stage / 'residuals.png').write_text('half')
      raise RuntimeError('matplotlib fell over')
  assert not (tmp_path / 'new').exists()
  old = tmp_path / 'old'
  old.mkdir()
  (old / 'fit.json').write_text('{"from": "the last fit"}')
  with pytest.raises(RuntimeError):
    with outdir.Staged(old) as stage:
      (stage / 'fit.json').write_text('{"from": "this fit"}')
      raise RuntimeError('disk full')
  assert [p.name for p in old.iterdir()] == ['fit.json']
  assert json.loads((old / 'fit.json').read_text()) == {'from': 'the last fit'}
  with outdir.Staged(old) as stage:  # success: moved in, and a stale bootstrap.csv goes
    (old / 'bootstrap.csv').write_text('E\n1\n')
    (stage / 'fit.json').write_text('{"from": "this fit"}')
  assert [p.name for p in old.iterdir()] == ['fit.json']
  assert json.loads((old / 'fit.json').read_text()) == {'from': 'this fit'}


def law_csv(path, rows=((1e8, 1e10), (1e8, 1e11), (3e8, 3e10), (1e9, 1e10), (1e9, 1e11),
                        (3e9, 3e10), (3e9, 3e11), (1e10, 1e11)), repeat=()):
  """Noise-free points on TRUTH (C = 6ND); `repeat` lists rows written again (copied points)."""
  N, D = (np.array([r[j] for r in rows] + [rows[i][j] for i in repeat]) for j in (0, 1))
  pd.DataFrame({'N': N, 'D': D, 'loss': laws.chinchilla(N, D, **TRUTH)}).to_csv(path, index=False)
  return path


def test_duplicated_rows_are_named_and_resampled_as_one_cluster(tmp_path, capsys):
  csv = law_csv(tmp_path / 'dup.csv', repeat=(2, 5))
  code, _, err = run(fit.main, [f'--csv={csv}', f'--out={tmp_path / "o"}', '--bootstrap=8',
                                '--cold-share=0'], capsys)
  assert code == 0 and err.count('warning: rows duplicate one another') == 1
  assert '2 rows of N=3e+08, D=3e+10' in err and '2 rows of N=3e+09, D=3e+10' in err
  result = json.loads((tmp_path / 'o' / 'fit.json').read_text())
  assert len(result['duplicates']) == 2
  assert result['bootstrap']['resampled'].startswith('8 clusters of points (duplicated rows')
  study = study_lib.Study.from_csv(csv)
  w = study.weights(200, seed=0)
  for copy, original in ((8, 2), (9, 5)):  # a copy is drawn with its original, never alone
    np.testing.assert_array_equal(w[:, copy], w[:, original])
  np.testing.assert_array_equal(w.sum(1), w[:, :8].sum(1) + w[:, [2, 5]].sum(1))


def test_near_duplicates_are_caught_and_seed_replicates_are_not(tmp_path):
  csv = law_csv(tmp_path / 'near.csv', repeat=(0, 1))
  table = pd.read_csv(csv)
  table.loc[8, 'loss'] *= 1 + 3e-6  # the same point printed with fewer digits
  table.loc[9, 'loss'] *= 1 + 1e-3  # a second seed: a measurement of its own
  table.to_csv(csv, index=False)
  assert study_lib.Study.from_csv(csv).duplicates == ['2 rows of N=1e+08, D=1e+10, loss=' +
                                                      f'{table.loc[0, "loss"]:.6g}']


@pytest.mark.parametrize('budget, verdict', [(1e17, 'below'), (1e300, 'beyond'), (1e24, None)])
def test_at_flops_is_refused_below_the_smallest_model_and_warned_far_beyond(tmp_path, capsys,
                                                                            budget, verdict):
  csv = law_csv(tmp_path / 'p.csv')  # C = 6e18 .. 6e21, N = 1e8 .. 1e10
  out = tmp_path / 'o'
  code, stdout, err = run(fit.main, [f'--csv={csv}', f'--out={out}', f'--at-flops={budget}'],
                          capsys)
  if verdict == 'below':
    assert code == 2 and err.count('\n') == 1 and not stdout and not out.exists()
    assert 'below the smallest model fitted (N = 1e+08)' in err and 'plan a budget of at least' in err
    return
  assert code == 0
  at = json.loads((out / 'fit.json').read_text())['at_flops']
  if verdict == 'beyond':
    assert err.count('warning: --at-flops=1e+300 lies') == 1 and 'over 1000x' in err
    assert 'treat it as a guess' in at['warning']
  else:
    assert 'warning' not in err and 'warning' not in at


def test_plan_stays_within_reason(tmp_path, capsys):
  p = dict(E=1.0, A=1.0, B=1.0, alpha=0.5, beta=0.5)  # N_opt = sqrt(C / 6)
  fitted = {'N': [1e8, 1e10], 'D': [1e8, 1e10], 'C': [6e16, 6e20]}
  path = write_fit(tmp_path / 'f', p, fitted_range=fitted)
  code, out, err = run(plan.main, [f'--fit={path}', '--hardware=h100', '--flops=1'], capsys)
  assert code == 2 and not out and err.count('\n') == 1
  # N_opt = sqrt(1/6) = 0.41 < 1e8; the smallest budget that reaches N = 1e8 is 6e16
  assert 'N = 0.408, below the smallest model fitted (N = 1e+08)' in err
  assert 'plan a budget of at least 6e+16' in err
  code, out, err = run(plan.main, [f'--fit={path}', '--hardware=h100', '--flops=1e300'], capsys)
  assert code == 0 and 'N_opt' in out and err.count('\n') == 1
  assert 'warning: --flops=1e+300 lies 1.67e+279x beyond the budgets fitted' in err
  # L_opt(C) = 1 + 2 (C/6)^(-1/4): loss 1 + 2e-7 needs C = 6·(1e7)^4 = 6e28, 1e8x beyond 6e20
  code, _, err = run(plan.main, [f'--fit={path}', '--hardware=h100', '--target-loss=1.0000002'],
                     capsys)
  assert code == 0 and err.count('\n') == 1
  assert 'warning: the budget that reaches --target-loss=1.0000002 (C = 6e+28) lies 1e+08x' in err
  code, _, err = run(plan.main, [f'--fit={write_fit(tmp_path / "g", p, fitted_range=None)}',
                                 '--hardware=h100', '--flops=6e18'], capsys)
  assert code == 0 and 'warning: the fit records no fitted_range' in err
