"""The quickstart's pieces (the whole quickstart is `make demo`): the backtest cut, the backtest
report and the summary of the fitted law."""

import json

import numpy as np
import pandas as pd
import pytest

from analysis import laws
from experiments import quickstart

LAW = {'E': 1.2, 'A': 30.0, 'B': 200.0, 'alpha': 0.35, 'beta': 0.3}


def isoflop_table() -> pd.DataFrame:
  """Points exactly on LAW at 3 budgets (C = 6ND) of 4 sizes each, budgets jittered by 1%."""
  rows = []
  for C in (1e12, 1e13, 1e14):
    for i, N in enumerate(np.geomspace(3e4, 3e5, 4)):
      c = C * (1 + 0.01 * i)
      rows.append({'N': N, 'D': c / (6 * N), 'C': c})
  table = pd.DataFrame(rows)
  table['loss'] = laws.chinchilla(table['N'], table['D'], **LAW)
  return table


def test_held_out_budget_is_the_top_of_the_second_largest_budget():
  assert quickstart.held_out_budget(isoflop_table()) == pytest.approx(1.03e13)


def test_backtest_on_exact_points_predicts_the_largest_budget(capsys):
  table = isoflop_table()
  table['loss_stderr'] = 0.002 * table['loss']
  error = quickstart.print_backtest(table)
  assert abs(error) < 1e-3
  out = capsys.readouterr().out
  assert 'fit on the 8 runs with C <= 1.03e+13, predict the 4 runs' in out
  assert 'median eval standard error 0.20% of the loss' in out  # the error beside the noise


def write_fit(folder, ratio, alphas=(0.3, 0.35, 0.4)):
  """fit.json of LAW with a table FLOP ratio, and 30 bootstrap rows where only alpha varies."""
  compute = {'convention': 'table', 'ratio_range': [ratio, ratio],
             'knots': {'N': [1e4, 1e6], 'ratio': [ratio, ratio]}}
  (folder / 'fit.json').write_text(json.dumps({
      'law': 'chinchilla', 'params': LAW, 'converged': True, 'compute': compute,
      'units': {'N': 'all parameters (column N)', 'D': 'tokens (bytes)'}}))
  samples = pd.DataFrame({**{k: [v] * 30 for k, v in LAW.items()}, 'alpha': list(alphas) * 10})
  samples.to_csv(folder / 'bootstrap.csv', index=False)


def test_law_summary_reads_fit_and_bootstrap(tmp_path, capsys):
  write_fit(tmp_path, 6.0)
  quickstart.print_law(str(tmp_path), 1e14, 'nats')
  out = capsys.readouterr().out
  assert 'L(N, D) = 1.2 + 30 / N^0.350 + 200 / D^0.300' in out
  assert 'N: all parameters (column N); D: tokens (bytes)' in out
  # a = beta / (alpha + beta): 0.3 / 0.65 = 0.4615; over alpha = 0.4, 0.35, 0.3: 0.4286 to 0.5
  assert 'a, N_opt ~ C^a: 0.462, 95% interval [0.429, 0.5]' in out


def test_tokens_per_parameter_are_in_the_runs_flop_convention(tmp_path, capsys):
  """Runs counting 12 FLOPs per parameter-token buy at C what 6ND buys at C/2."""
  (tmp_path / 'six').mkdir(), (tmp_path / 'twelve').mkdir()
  write_fit(tmp_path / 'six', 6.0), write_fit(tmp_path / 'twelve', 12.0)
  ratios = {}
  for name, C in (('six', 5e13), ('twelve', 1e14)):
    quickstart.print_law(str(tmp_path / name), C, 'nats')
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith('optimal tokens'))
    ratios[name] = float(line.split(': ')[1].split(',')[0])
    assert ('C = r(N)·N·D, r = 12 to 12' if name == 'twelve' else 'r = 6 to 6') in line
  # hand-worked under 6ND at C = 5e13: G = (0.35·30 / (0.3·200))^(1/0.65), N = G (C/6)^(0.3/0.65)
  G = (0.35 * 30 / (0.3 * 200))**(1 / 0.65)
  N = G * (5e13 / 6)**(0.3 / 0.65)
  assert ratios['twelve'] == ratios['six'] == pytest.approx(5e13 / 6 / N**2, rel=2e-3)
