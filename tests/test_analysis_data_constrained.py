"""The data-constrained law (Muennighoff et al. 2023): its terms by hand, and its fit recovering
known parameters from synthetic runs that repeat data."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from analysis import data_constrained, engine, laws

TRUE = dict(E=1.7, A=406.4, B=410.7, alpha=0.34, beta=0.28, R_D_star=15.4, R_N_star=5.3)


def test_effective_data_by_hand():
  # U = 100 unique tokens seen 3 times (R = 2 repeats), R* = 5: 100 + 500 (1 - e^-0.4)
  assert laws.effective(100.0, 300.0, 5.0) == pytest.approx(100 + 500 * (1 - np.exp(-0.4)), rel=1e-12)
  assert laws.effective(100.0, 60.0, 5.0) == 60.0  # under one epoch, every token is new
  assert laws.effective(100.0, 1e9, 5.0) == pytest.approx(100 * (1 + 5), rel=1e-9)  # saturates


def test_optimal_params_invert_the_compute_optimal_allocation():
  p = {k: TRUE[k] for k in ('A', 'B', 'alpha', 'beta')}
  C = 1e21
  loss = lambda logn: TRUE['E'] + p['A'] / np.exp(logn)**p['alpha'] + p['B'] / (
      C / (6 * np.exp(logn)))**p['beta']
  n_opt = np.exp(optimize.minimize_scalar(loss, bounds=(np.log(1e6), np.log(1e13)),
                                          method='bounded', options={'xatol': 1e-10}).x)
  assert laws.optimal_params_for_tokens(C / (6 * n_opt), **p) == pytest.approx(n_opt, rel=1e-6)


def synthetic(noise=1e-4, seed=0):
  """Runs as a data-constrained study has them: for each size N, a corpus of U = 8 D_opt(N)
  unique tokens, seen up to once by N itself and 2, 8 and 32 times by N, 4N and 16N."""
  rng = np.random.default_rng(seed)
  G = (TRUE['alpha'] * TRUE['A'] / (TRUE['beta'] * TRUE['B']))**(1 / (TRUE['alpha'] + TRUE['beta']))
  rows = []
  for N in np.geomspace(1e6, 1e9, 4):
    U = 8 * (N / G)**(TRUE['alpha'] / TRUE['beta']) / G  # D_opt(N) inverts N_opt = G (G D)^(β/α)
    rows += [(N, U, e * U) for e in (1 / 8, 1 / 4, 1 / 2, 1)]
    rows += [(m * N, U, e * U) for m in (1, 4, 16) for e in (2, 8, 32)]
  N, U, D = map(np.array, zip(*rows))
  loss = laws.data_constrained(N, D, U, **TRUE) * np.exp(noise * rng.standard_normal(len(N)))
  return pd.DataFrame({'N': N, 'D': D, 'C': 6 * N * D, 'U': U, 'loss': loss})


def test_the_fit_recovers_known_parameters():
  table = synthetic()
  result = data_constrained.fit(table)
  assert result.converged and result.n_excess_params > 0
  for k, v in TRUE.items():
    assert result.params[k] == pytest.approx(v, rel=0.03), k
  # Without repeated data the loss would be the Chinchilla law's; the fit is much closer.
  out = data_constrained.to_json(result, table)
  assert out['residuals']['rms_log'] < 3e-4


def test_given_the_chinchilla_part_the_repeat_constants_are_exact_on_clean_data():
  base = {k: TRUE[k] for k in data_constrained.CHINCHILLA_KEYS}
  result = data_constrained.fit(synthetic(noise=0.0), base=base, base_name='given')
  assert result.params['R_D_star'] == pytest.approx(TRUE['R_D_star'], rel=1e-3)
  assert result.params['R_N_star'] == pytest.approx(TRUE['R_N_star'], rel=1e-3)


def test_r_n_star_is_none_when_no_model_is_too_big_for_its_data():
  table = synthetic()
  base = {k: TRUE[k] for k in data_constrained.CHINCHILLA_KEYS}
  small = table[table['N'] <= laws.optimal_params_for_tokens(
      np.minimum(table['U'], table['D']), TRUE['A'], TRUE['B'], TRUE['alpha'], TRUE['beta'])]
  result = data_constrained.fit(small, base=base)
  assert result.params['R_N_star'] is None and result.n_excess_params == 0
  assert result.params['R_D_star'] == pytest.approx(TRUE['R_D_star'], rel=0.05)


def test_points_that_never_repeat_data_are_refused():
  table = synthetic()
  with pytest.raises(data_constrained.errors.InputError, match='no point repeats data'):
    data_constrained.fit(table[table['D'] <= table['U']])
  with pytest.raises(data_constrained.errors.InputError, match='unique tokens U'):
    data_constrained.fit(table.drop(columns='U'))


def test_the_command_line_fits_a_csv_with_a_given_chinchilla_part(tmp_path):
  from analysis import fit
  table = synthetic(noise=0.0).rename(columns={'U': 'unique', 'loss': 'eval_bits_per_byte'})
  table.assign(eval_loss=9.0).to_csv(tmp_path / 'runs.csv', index=False)  # --loss picks the column
  base = {k: TRUE[k] for k in data_constrained.CHINCHILLA_KEYS}
  (tmp_path / 'base.json').write_text(json.dumps({'law': 'chinchilla', 'converged': True,
                                                  'params': base}))
  fit.main([f'--csv={tmp_path / "runs.csv"}', '--law=data_constrained', '--columns=U=unique',
            '--loss=eval_bits_per_byte', f'--base-fit={tmp_path / "base.json"}',
            f'--out={tmp_path / "fit"}'])
  out = json.loads((tmp_path / 'fit' / 'fit.json').read_text())
  assert out['law'] == 'data_constrained' and out['converged']
  assert out['units']['loss'] == 'column eval_bits_per_byte'
  assert out['params']['R_D_star'] == pytest.approx(TRUE['R_D_star'], rel=1e-3)
  (tmp_path / 'bad.json').write_text(json.dumps({'law': 'power', 'params': {}}))
  with pytest.raises(data_constrained.errors.InputError, match='not the fit.json of a converged'):
    fit.main([f'--csv={tmp_path / "runs.csv"}', '--law=data_constrained', '--columns=U=unique',
              '--loss=eval_bits_per_byte', f'--base-fit={tmp_path / "bad.json"}',
              f'--out={tmp_path / "fit2"}'])


def test_bootstrap_intervals_cover_the_true_repeat_constants():
  # 1% noise: the full fit is off by ~30% in R_D*, and its 95% interval must say so.
  table = synthetic(noise=1e-2)
  full = data_constrained.fit(table)
  out = data_constrained.bootstrap(full, engine.multinomial_weights(len(table), 40, 0), seed=0)
  assert out['converged'] >= 36  # these draws: 37; 3 resamples leave R_N* unidentified (> 1e5)
  for k in ('R_D_star', 'R_N_star'):
    lo, hi = out['ci95'][k]
    assert lo < TRUE[k] < hi and lo < full.params[k] < hi, (k, lo, hi)
    assert 0 < out['stderr'][k] < hi - lo
  weights = engine.multinomial_weights(len(table), 5, 1)
  assert data_constrained.bootstrap(full, weights, 0.2, 1) == \
      data_constrained.bootstrap(full, weights, 0.2, 1)


def test_the_law_spec_names_its_row_and_predicts_the_law():
  law = laws.DATA_CONSTRAINED
  back = law.named(law.row(TRUE))
  assert list(back) == list(law.params)
  np.testing.assert_allclose([back[k] for k in TRUE], list(TRUE.values()), rtol=1e-12)
  table = synthetic(noise=0.0)
  np.testing.assert_allclose(law.predict(TRUE, N=table['N'], D=table['D'], U=table['U']),
                             table['loss'], rtol=1e-12)
  r, _ = law.residuals(table)(law.row(TRUE)[None], np.log(table['loss'].to_numpy())[None])
  np.testing.assert_allclose(r, 0, atol=1e-12)
  assert law.named(law.row({**TRUE, 'R_N_star': None}))['R_N_star'] == 1.0  # held: no effect
