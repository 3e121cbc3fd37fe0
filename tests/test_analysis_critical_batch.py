"""--law=critical_batch: steps to a target loss, S = S_min (1 + B_crit/B) against an independent
solver, Zhang et al.'s definition against their own equation, the intervals' coverage on synthetic
studies, the reproduction of their published numbers (CI), runs and a CSV on the command line."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from analysis import cli
from analysis import critical_batch
from analysis import fit as fit_cmd
from analysis import intervals
from experiments import reproduce_critical_batch
from test_analysis_hparams import run_fit
from test_analysis_runs import write_run

BATCHES = 2.0**np.arange(6, 15)
SIZES = np.array([85.0, 151, 302, 604, 1200])
BETA, K = 0.5, 200.0  # true B_crit = K N^BETA


def test_steps_to_target_interpolates_between_the_evals_that_straddle_it():
  assert critical_batch.steps_to_target([0, 100, 200, 300], [5.0, 4.0, 3.0, 2.5], 3.5) == 150.0
  assert critical_batch.steps_to_target([0, 100, 200], [5.0, 4.0, 3.0], 3.0) == 200.0
  assert np.isnan(critical_batch.steps_to_target([0, 100], [5.0, 4.0], 3.9))


def test_fit_matches_scipy_curve_fit_in_log_steps():
  rng = np.random.default_rng(0)
  steps = 1500 * (1 + 3000 / BATCHES) * np.exp(0.05 * rng.normal(size=len(BATCHES)))
  found = critical_batch.fit_size(BATCHES, steps)
  (a, b), _ = optimize.curve_fit(lambda B, a, b: np.log(a + b / B), BATCHES, np.log(steps),
                                 p0=[1000, 1e6], maxfev=10000)
  assert found['converged']
  np.testing.assert_allclose([found['S_min'], found['B_crit']], [a, b / a], rtol=1e-6)


def test_zhang_definition_solves_their_equation():
  """S(B) = 1.2 S(256) 256 / B, solved by a root finder on S = S_min (1 + B_crit / B)."""
  s_min, b_crit = 1293.8, 2190.6
  steps = lambda B: s_min * (1 + b_crit / B)
  root = optimize.brentq(lambda B: steps(B) - 1.2 * steps(256) * 256 / B, 257, 1e6, xtol=1e-12)
  assert critical_batch.zhang_critical_batch(b_crit, 256, 0.2) == pytest.approx(root, rel=1e-10)


def synthetic(seed: int, sigma: float = 0.05) -> tuple[pd.DataFrame, np.ndarray]:
  rng = np.random.default_rng(seed)
  b_crit_S, s_min_S = K * SIZES**BETA, 1000 * SIZES**0.3
  steps_SxB = s_min_S[:, None] * (1 + b_crit_S[:, None] / BATCHES) * np.exp(
      sigma * rng.normal(size=(len(SIZES), len(BATCHES))))
  return pd.DataFrame({'N': np.repeat(SIZES, len(BATCHES)), 'batch': np.tile(BATCHES, len(SIZES)),
                       'steps': steps_SxB.ravel()}), b_crit_S


def test_intervals_cover_the_truth_on_synthetic_studies():
  """The exponent's interval in at least 90 of 100 studies; each size's B_crit in at least 85% of
  the 500 intervals (measured: 94 of 100 and 90%; with 2 parameters from 9 points the percentile
  intervals of one size are somewhat narrow, and the docs say so)."""
  exponent_hits, size_hits = 0, 0
  for seed in range(100):
    table, b_crit_S = synthetic(seed)
    found = critical_batch.fit(table, critical_batch.Options(bootstrap=100, seed=seed))
    lo, hi = intervals.ci95(found.law.samples['N'])
    exponent_hits += lo <= BETA <= hi
    for truth, resampled in zip(b_crit_S, found.resampled.T):
      lo, hi = intervals.ci95(resampled)
      size_hits += lo <= truth <= hi
  assert exponent_hits >= 90, exponent_hits
  assert size_hits >= 0.85 * 500, size_hits


def test_reproduction_of_zhang_et_al_passes(tmp_path, capsys):
  cli.run(reproduce_critical_batch.main, ['--bootstrap=20', f'--out={tmp_path}'])
  out = capsys.readouterr().out
  assert 'FAIL' not in out and out.count('pass') == 7
  rows = json.loads((tmp_path / 'critical_batch.json').read_text())['comparison']
  assert [round(r['ours']) for r in rows[:5]] == [745, 955, 1394, 1889, 2533]
  assert max(abs(r['rel_diff']) for r in rows) < 1e-5


def test_runs_give_the_steps_to_the_target_from_their_eval_curves(tmp_path, capsys):
  for N in (1000, 4000):
    for batch in (4, 8, 16, 32):
      s_min, b_crit = 100.0 * N / 1000, 8.0 * np.sqrt(N / 1000)
      reach = s_min * (1 + b_crit / batch)  # steps at which the loss crosses 3.0
      d = write_run(tmp_path / 'runs', f'N{N}-b{batch}', n_params=N,
                    steps=(0, round(reach / 2), round(2 * reach)), losses=(5.0, 4.0, 2.0),
                    tokens_per_step=batch * 16)
      config = json.loads((d / 'config.json').read_text())
      (d / 'config.json').write_text(json.dumps({**config, 'lr': 1e-3, 'batch_size': batch}))
  code, lines = run_fit([f'--runs={tmp_path / "runs"}', '--law=critical_batch',
                         '--target-loss=3.0', '--batch-unit=sequences',
                         f'--out={tmp_path / "out"}'], capsys)
  assert code == 0, lines
  c = json.loads((tmp_path / 'out' / 'fit.json').read_text())['critical_batch']
  assert c['definition'] == 'mccandlish' and c['batch_unit'] == 'sequences'
  # the loss falls linearly from 4.0 at reach/2 to 2.0 at 2 reach: 3.0 at 1.25 reach
  np.testing.assert_allclose([s['B_crit'] for s in c['sizes']], [8.0, 16.0], rtol=0.02)
  assert [s['target_loss'] for s in c['sizes']] == [3.0, 3.0]


def test_ambiguous_batch_column_of_a_csv_is_one_line(tmp_path, capsys):
  table, _ = synthetic(0)
  table.rename(columns={'batch': 'bs'}).to_csv(tmp_path / 'cbs.csv', index=False)
  code, lines = run_fit([f'--csv={tmp_path / "cbs.csv"}', '--law=critical_batch',
                         '--columns=batch=bs', f'--out={tmp_path / "out"}'], capsys)
  assert code == 2 and len(lines) == 1 and '--batch-unit' in lines[0], lines
  assert not (tmp_path / 'out').exists()
