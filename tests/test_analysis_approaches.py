"""Approach 1 against the closed form, and the three approaches side by side (Table 2 layout)."""

import numpy as np
import pandas as pd
import pytest

from analysis import approach1
from analysis import approaches
from analysis import errors
from analysis import figures
from analysis import laws

FIT = dict(E=1.817, A=477.8, B=2143.0, alpha=0.3473, beta=0.3672)
A_EXP = laws.exponents(FIT['alpha'], FIT['beta'])[0]


def law_curves(sizes=np.geomspace(1e7, 1e10, 60), step0=False):
  rows = []
  for N in sizes:
    D = N * np.geomspace(0.5, 500, 40)
    rows += [{'run': f'{N:.3g}', 'N': N, 'D': d, 'C': 6 * N * d,
              'loss': laws.chinchilla(N, d, **FIT)} for d in D]
    if step0:  # the step-0 eval: no tokens, no FLOPs
      rows.append({'run': f'{N:.3g}', 'N': N, 'D': 0.0, 'C': 0.0, 'loss': 11.0})
  return pd.DataFrame(rows)


def test_envelope_hand_worked():
  # run a is better below C = 2, run b above it
  curves = pd.DataFrame({'run': ['a'] * 3 + ['b'] * 3, 'N': [1] * 3 + [2] * 3,
                         'C': [1, 2, 4, 1, 2, 4], 'D': [1, 2, 4, 0.5, 1, 2],
                         'loss': [3.0, 2.0, 1.8, 3.5, 2.0, 1.2]})
  env = approach1.envelope(curves, n_grid=3)
  np.testing.assert_allclose(env['C'], [1, 2, 4])
  assert list(env['N']) == [1, 1, 2] and list(env['loss']) == [3.0, 2.0, 1.2]


def test_approach1_envelope_follows_closed_form_and_drops_step_zero():
  opt = approach1.approach1(law_curves(step0=True))  # C = 0 rows would break the logs
  assert opt.n_opt.exponent == pytest.approx(A_EXP, abs=0.03)
  boot = approach1.approach1_bootstrap(law_curves(np.geomspace(1e7, 1e10, 20)), 10, seed=0)
  assert np.nanmedian(boot['a']) == pytest.approx(A_EXP, abs=0.05)


def test_approach1_needs_inner_sizes():
  with pytest.raises(errors.InputError, match='fewer than 2 inner sizes'):
    approach1.approach1(law_curves(np.array([1e7, 1e8, 1e9])))


def test_single_length_cosine_runs_warn():
  runs = pd.DataFrame({'run': ['a', 'b'], 'N': [1e6, 2e6], 'steps': [100, 100],
                       'schedule': ['cosine', 'cosine']})
  assert 'biased towards small models' in approach1.single_length_warning(runs)
  several = pd.DataFrame({'run': ['a', 'b', 'c'], 'N': [1e6, 1e6, 2e6], 'steps': [100, 200, 100],
                          'schedule': ['cosine'] * 3})
  assert approach1.single_length_warning(several) is None
  branches = runs.assign(cluster=['t', 't'])
  assert approach1.single_length_warning(branches) is None


def test_rows_and_disagreement_note():
  rows = [approaches.Row(1, why_not='needs training curves: pass --runs'),
          approaches.Row(2, 0.50, 0.50, [0.48, 0.52], [0.48, 0.52]),
          approaches.Row(3, 0.46, 0.54, [0.455, 0.465], [0.535, 0.545])]
  text = approaches.lines(rows)
  assert 'does not apply: needs training curves' in text[1]
  assert '0.500 (0.480, 0.520)' in text[2] and '0.460 (0.455, 0.465)' in text[3]
  notes = approaches.disagreements(rows)
  assert len(notes) == 2 and 'Approaches 2 and 3 disagree on a' in notes[0]
  rows[2].a_ci95 = [0.45, 0.49]
  rows[2].b_ci95 = [0.51, 0.55]
  assert approaches.disagreements(rows) == []
  js = approaches.to_json(rows)
  assert js['rows'][0] == {'approach': 1, 'name': 'Minimum over training curves',
                           'applies': False, 'why_not': 'needs training curves: pass --runs'}


def test_approach3_interval_from_samples():
  samples = {'alpha': np.array([0.3, 0.34, 0.38]), 'beta': np.array([0.3, 0.3, 0.3])}
  row = approaches.approach3_row('chinchilla', {'alpha': 0.3, 'beta': 0.3}, samples)
  assert row.a == 0.5 and row.b == 0.5
  assert row.a_ci95[0] == pytest.approx(np.percentile(0.3 / (0.3 + samples['alpha']), 2.5))
  assert approaches.approach3_row('power', {}, None).why_not.startswith('--law=power')


def test_tokens_per_param_figure(tmp_path):
  C = np.geomspace(1e19, 1e24, 20)
  paths = figures.tokens_per_param(C, np.full(20, 20.0), (np.full(20, 15.0), np.full(20, 25.0)),
                                 tmp_path)
  assert [p.suffix for p in paths] == ['.png', '.pdf']
