"""The fit and plan command lines: outputs, hand-worked plans, and one-line errors on bad input."""

import json

import numpy as np
import pandas as pd
import pytest

from analysis import cli
from analysis import fit
from analysis import hardware
from analysis import laws
from analysis import plan

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


def write_csv(path, n=30, seed=0, edits=()):
  """Points with renamed columns and no D column (so D = C / 6N); edits: ((column, row), value)."""
  rng = np.random.default_rng(seed)
  N = np.geomspace(5e7, 5e9, n)
  D = N * rng.uniform(2, 200, n)
  loss = laws.chinchilla(N, D, **TRUTH) * (1 + 0.002 * rng.standard_normal(n))
  df = pd.DataFrame({'params': N, 'flops': 6 * N * D, 'final_loss': loss})
  for (col, row), value in edits:
    df.loc[row, col] = value
  df.to_csv(path, index=False)
  return path


def test_fit_csv_writes_fit_json_bootstrap_and_plots(tmp_path, capsys):
  csv = write_csv(tmp_path / 'points.csv')
  out = tmp_path / 'out'
  code, stdout, _ = run(fit.main, [f'--csv={csv}', '--law=chinchilla', f'--out={out}',
                                   '--columns', 'N=params,C=flops,loss=final_loss',
                                   '--exclude-top-loss=2', '--bootstrap=40', '--seed=3',
                                   '--at-flops=1e22', '--backtest=1e20'], capsys)
  assert code == 0
  result = json.loads((out / 'fit.json').read_text())
  assert list(result) == FIT_KEYS and result['n_points'] == 28
  for key in ('params', 'stderr', 'ci95'):
    assert list(result[key]) == ['E', 'A', 'B', 'alpha', 'beta']
  assert result['params']['E'] == pytest.approx(TRUTH['E'], rel=0.05)
  assert result['a'] == pytest.approx(laws.exponents(result['params']['alpha'],
                                                     result['params']['beta'])[0])
  assert len(pd.read_csv(out / 'bootstrap.csv')) == 40
  for name in ('loss_vs_compute', 'residuals', 'contours', 'optimal_allocation'):
    assert (out / f'{name}.png').stat().st_size > 0 and (out / f'{name}.pdf').stat().st_size > 0
  assert 'N_opt @ C=1e+22' in stdout and 'alpha' in stdout
  held = pd.read_csv(out / 'backtest.csv')
  assert len(held) and (held['C'] > 1e20).all()
  np.testing.assert_allclose(held['rel_error'], held['predicted'] / held['loss'] - 1)
  assert held['rel_error'].abs().max() < 0.05


@pytest.mark.parametrize('case, args, message', [
    ('missing column', {'columns': 'N=params,C=flops'}, "missing column 'loss'"),
    ('NaN', {'edits': [(('final_loss', 3), np.nan)]}, "column 'loss' has 1 NaN or non-positive"),
    ('non-positive', {'edits': [(('params', 0), -5.0)]}, "column 'N' has 1 NaN or non-positive"),
    ('too few points', {'n': 4}, 'cannot fit the chinchilla law'),
    ('unknown column', {'columns': 'N=size,C=flops,loss=final_loss'}, "column 'size'"),
])
def test_bad_csv_input_is_one_line_and_exit_2(tmp_path, capsys, case, args, message):
  del case
  columns = args.pop('columns', 'N=params,C=flops,loss=final_loss')
  csv = write_csv(tmp_path / 'points.csv', **args)
  out = tmp_path / 'out'
  code, stdout, err = run(fit.main, [f'--csv={csv}', f'--out={out}', f'--columns={columns}'],
                          capsys)
  assert code == 2 and message in err and err.count('\n') == 1 and not stdout
  assert not out.exists()


def test_empty_runs_folder_and_bad_flag_are_one_line(tmp_path, capsys):
  (tmp_path / 'empty').mkdir()
  code, _, err = run(fit.main, [f'--runs={tmp_path / "empty"}', f'--out={tmp_path / "o"}'], capsys)
  assert code == 2 and 'no run directories' in err and err.count('\n') == 1
  code, _, err = run(fit.main, ['--csv=x.csv', '--law=cubic', '--out=o'], capsys)
  assert code == 2 and "invalid choice: 'cubic'" in err and err.count('\n') == 1


def write_fit(folder, params, law='chinchilla', samples=None):
  folder.mkdir(exist_ok=True)
  (folder / 'fit.json').write_text(json.dumps({'law': law, 'params': params}))
  if samples is not None:
    pd.DataFrame(samples).to_csv(folder / 'bootstrap.csv', index=False)
  return folder / 'fit.json'


def test_plan_hand_worked():
  # A = B, alpha = beta = 1/2 -> N_opt = D_opt = sqrt(C / 6) = 1e10 at C = 6e20
  p = dict(E=1.0, A=1.0, B=1.0, alpha=0.5, beta=0.5)
  h100 = hardware.DEVICES['h100']
  got = plan.plan(p, h100, mfu=0.4, flops=6e20, price_per_hour=2.0)
  hours = 6e20 / (989e12 * 0.4) / 3600
  assert got['N_opt'] == pytest.approx(1e10) and got['D_opt'] == pytest.approx(1e10)
  assert got['device_hours'] == pytest.approx(hours) and got['cost'] == pytest.approx(2 * hours)
  assert got['energy_MWh'] == pytest.approx(hours * 700 / 1e6)
  assert got['loss'] == pytest.approx(1.0 + 2e-5)
  # L_opt(C) = 1 + 2 (C/6)^(-1/4), so loss 1.02 needs C = 6e8
  assert plan.plan(p, h100, mfu=0.4, target_loss=1.02)['FLOPs'] == pytest.approx(6e8, rel=1e-8)


def test_plan_cli_with_bootstrap_intervals(tmp_path, capsys):
  p = dict(E=1.0, A=1.0, B=1.0, alpha=0.5, beta=0.5)
  samples = {k: np.full(20, v) * np.linspace(0.95, 1.05, 20) for k, v in p.items()}
  path = write_fit(tmp_path / 'f', p, samples=samples)
  code, out, _ = run(plan.main, [f'--fit={path}', '--flops=6e20', '--hardware=tpu-v5p'], capsys)
  assert code == 0 and '(estimate)' in out and 'GPT-3' in out
  n_line = next(line for line in out.splitlines() if line.startswith('N_opt'))
  assert '1e+10' in n_line and '[' in n_line


@pytest.mark.parametrize('argv, message', [
    (['--target-loss=0.9'], 'not above the fitted irreducible loss'),
    (['--flops=1e21', '--mfu=1.5'], '--mfu must be in (0, 1]'),
    (['--flops=-3'], '--flops must be > 0'),
])
def test_plan_bad_input(tmp_path, capsys, argv, message):
  path = write_fit(tmp_path / 'f', dict(E=1.0, A=1.0, B=1.0, alpha=0.5, beta=0.5))
  code, out, err = run(plan.main, [f'--fit={path}', '--hardware=h100', *argv], capsys)
  assert code == 2 and message in err and err.count('\n') == 1 and not out


def test_plan_rejects_a_power_law_fit(tmp_path, capsys):
  path = write_fit(tmp_path / 'f', dict(E=1.0, x0=1.0, alpha=0.5), law='power')
  code, _, err = run(plan.main, [f'--fit={path}', '--hardware=h100', '--flops=1e20'], capsys)
  assert code == 2 and 'not a Chinchilla-law fit' in err
