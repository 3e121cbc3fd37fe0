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
  error = quickstart.print_backtest(isoflop_table())
  assert abs(error) < 1e-3
  out = capsys.readouterr().out
  assert 'fit on the 8 runs with C <= 1.03e+13, predict the 4 runs' in out


def test_law_summary_reads_fit_and_bootstrap(tmp_path, capsys):
  (tmp_path / 'fit.json').write_text(json.dumps({'law': 'chinchilla', 'params': LAW}))
  alphas = np.array([0.3, 0.35, 0.4] * 10)
  samples = pd.DataFrame({**{k: [v] * 30 for k, v in LAW.items()}, 'alpha': alphas})
  samples.to_csv(tmp_path / 'bootstrap.csv', index=False)
  quickstart.print_law(str(tmp_path), 1e14, 'nats')
  out = capsys.readouterr().out
  assert 'L(N, D) = 1.2 + 30 / N^0.350 + 200 / D^0.300' in out
  a = LAW['beta'] / (LAW['alpha'] + LAW['beta'])  # Chinchilla: N_opt ~ C^(beta / (alpha + beta))
  lo, hi = 0.3 / (0.4 + 0.3), 0.3 / (0.3 + 0.3)
  assert f'a, N_opt ~ C^a: {a:.3f}, 95% interval [{lo:.3g}, {hi:.3g}]' in out
