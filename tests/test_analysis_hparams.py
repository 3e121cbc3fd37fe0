"""--law=hparams: the power law in several variables against an independent least-squares solve,
each cell's optimum both ways, the bootstrap's coverage on synthetic grids drawn from a known
η*(N, D) and B*(D), the reader of runs, the command line with its bad input, and the plan."""

import json

import numpy as np
import pandas as pd
import pytest

from analysis import cli
from analysis import fit as fit_cmd
from analysis import hparam_laws
from analysis import hparam_optima
from analysis import hparams
from analysis import intervals
from analysis import plan
from test_analysis_runs import write_run

TRUE_LR = {'coefficient': 1.79, 'N': -0.713, 'D': 0.307}  # Step Law's published law as truth
TRUE_BATCH = {'coefficient': 0.58, 'D': 0.571}


def synthetic_grid(rng, sizes=(1e8, 3e8, 1e9), tokens=(1e10, 4e10), sigma=0.003, n_lr=7, n_b=6):
  """Every cell a grid of factors of 2 around the true optimum (at a random offset), with loss
  3 + 0.03 log2(η/η*)² + 0.015 log2(B/B*)² + N(0, σ²)."""
  rows = []
  for N in sizes:
    for D in tokens:
      eta = hparam_laws.power_product(TRUE_LR['coefficient'], {'N': TRUE_LR['N'],
                                                               'D': TRUE_LR['D']}, N=N, D=D)
      B = hparam_laws.power_product(TRUE_BATCH['coefficient'], {'D': TRUE_BATCH['D']}, D=D)
      lr_G = 2.0**(np.floor(np.log2(eta) + rng.uniform()) + np.arange(n_lr) - n_lr // 2)
      b_G = 2.0**(np.floor(np.log2(B) + rng.uniform()) + np.arange(n_b) - n_b // 2)
      for lr in lr_G:
        for b in b_G:
          loss = 3 + 0.03 * np.log2(lr / eta)**2 + 0.015 * np.log2(b / B)**2 + sigma * rng.normal()
          rows.append({'N': N, 'D': D, 'C': 6 * N * D, 'lr': lr, 'batch': b, 'loss': loss})
  return pd.DataFrame(rows)


def test_power_product_fit_is_weighted_least_squares_in_log_space():
  rng = np.random.default_rng(0)
  t = pd.DataFrame({'N': np.exp(rng.uniform(9, 21, 40)), 'D': np.exp(rng.uniform(14, 25, 40))})
  t['y'] = hparam_laws.power_product(1.79, {'N': -0.713, 'D': 0.307}, **t) * np.exp(
      0.2 * rng.normal(size=40))
  w_P = rng.integers(0, 4, 40).astype(float)
  law = hparam_laws.PowerProduct.on(t, ('N', 'D'))
  found = hparam_laws.fit(law, t, 'y', w_P)
  X_PxQ = np.stack([np.ones(40), np.log(t['N']), np.log(t['D'])], 1)
  sqrt_w = np.sqrt(w_P)[:, None]
  c_Q = np.linalg.lstsq(X_PxQ * sqrt_w, np.log(t['y']) * sqrt_w[:, 0], rcond=None)[0]
  assert found.best.converged
  np.testing.assert_allclose([np.log(found.params['coefficient']), found.params['N'],
                              found.params['D']], c_Q, rtol=1e-7, atol=1e-9)
  np.testing.assert_allclose(law.row(found.params), found.best.x, rtol=1e-12, atol=1e-12)


def test_band_optimum_by_hand():
  lr = [1e-3, 2e-3, 4e-3, 1e-3, 2e-3, 4e-3]
  batch = [64, 64, 64, 128, 128, 128]
  loss = [3.10, 3.000, 3.05, 3.20, 3.006, 3.04]  # 3.006 is within 0.25% of 3.0; 3.04 is not
  found = hparam_optima.band_optimum(lr, batch, loss, 0.0025)
  assert found.near_R.tolist() == [False, True, False, False, True, False]
  assert found.lr == pytest.approx(2e-3) and found.batch == pytest.approx(np.sqrt(64 * 128))
  assert found.loss == 3.0 and found.edge == 'batch'  # the best run has the smallest batch
  inside = hparam_optima.band_optimum(lr + [2e-3], batch + [32], loss + [3.2], 0.0025)
  assert inside.edge is None


def test_interp_optimum_finds_the_minimum_of_a_smooth_valley():
  lr_G, b_G = 2.0**np.arange(-12, -5), 2.0**np.arange(5, 11)
  lr, b = (a.ravel() for a in np.meshgrid(lr_G, b_G))
  eta, B = 2**-8.6, 2**7.7  # between grid points
  loss = 3 * np.exp(0.01 * np.log2(lr / eta)**2 + 0.005 * np.log2(b / B)**2)
  found = hparam_optima.interp_optimum(lr, b, loss)
  step = np.log(lr_G[-1] / lr_G[0]) / (hparam_optima.INTERP_POINTS - 1)  # the fine grid's step
  assert abs(np.log(found.lr / eta)) < 1.5 * step
  assert abs(np.log(found.batch / B)) < 1.5 * np.log(b_G[-1] / b_G[0]) / 99
  assert found.edge is None


def test_intervals_cover_the_true_exponents_in_90_of_100_synthetic_studies():
  hits, inside = np.zeros(3), np.zeros(3)
  for seed in range(100):
    grid = hparams.Grid(synthetic_grid(np.random.default_rng(seed)), {}, 'tokens')
    found = hparams.fit(grid, hparams.Options(bootstrap=100, seed=seed))
    for i, (fit, key, truth) in enumerate(((found.lr, 'N', TRUE_LR), (found.lr, 'D', TRUE_LR),
                                           (found.batch, 'D', TRUE_BATCH))):
      lo, hi = intervals.ci95(fit.samples[key])
      hits[i] += lo <= truth[key] <= hi
      inside[i] += lo <= fit.params[key] <= hi
  assert (hits >= 90).all(), hits
  assert (inside == 100).all(), inside  # every estimate lies within its own interval


def runs_folder(root, rng) -> None:
  """A 2 x 2 grid of cells of 3 LRs x 3 batches as run directories."""
  for N in (1000, 4000):
    for tokens in (2**14, 2**16):
      for lr in (1e-3, 2e-3, 4e-3):
        for batch in (4, 8, 16):
          name = f'N{N}-D{tokens}-lr{lr:g}-b{batch}'
          loss = 3 + np.log2(lr / 2e-3)**2 * 0.02 + np.log2(batch / 8)**2 * 0.01 + 0.001 * (
              N == 1000) + 0.0001 * rng.normal()
          steps = tokens // (batch * 32)
          d = write_run(root, name, n_params=N, steps=(0, steps // 2, steps),
                        tokens_per_step=batch * 32, losses=(5.0, 4.0, loss))
          config = json.loads((d / 'config.json').read_text())
          (d / 'config.json').write_text(json.dumps({**config, 'lr': lr, 'batch_size': batch}))


def test_runs_give_the_peak_lr_and_the_batch_in_tokens_or_sequences(tmp_path):
  runs_folder(tmp_path, np.random.default_rng(0))
  tokens = hparams.Grid.from_runs(tmp_path)
  sequences = hparams.Grid.from_runs(tmp_path, batch_unit='sequences')
  assert sorted(tokens.table['batch'].unique()) == [128, 256, 512]  # batch x 32 tokens
  assert sorted(sequences.table['batch'].unique()) == [4, 8, 16]
  assert tokens.tokens_per_sequence == 32 and sorted(tokens.table['lr'].unique()) == [1e-3, 2e-3,
                                                                                      4e-3]
  assert 'tokens per step' in tokens.units['batch'] and 'config.json lr' in tokens.units['lr']


def run_fit(argv, capsys) -> tuple[int, list[str]]:
  try:
    cli.run(fit_cmd.main, argv)
    code = 0
  except SystemExit as e:
    code = e.code
  out, err = capsys.readouterr()
  return code, [line for line in (out + err).splitlines() if line.strip()]


def test_command_line_writes_the_laws_cells_and_figures(tmp_path, capsys):
  runs_folder(tmp_path / 'runs', np.random.default_rng(0))
  code, lines = run_fit([f'--runs={tmp_path / "runs"}', '--law=hparams', '--bootstrap=20',
                         f'--out={tmp_path / "out"}', '--lr-vars=N,D', '--batch-vars=D'], capsys)
  assert code == 0, lines
  h = json.loads((tmp_path / 'out' / 'fit.json').read_text())['hparams']
  assert h['method'] == 'band' and h['band'] == 0.0025 and h['batch_unit'] == 'tokens'
  assert set(h['lr']['exponents']) == {'N', 'D'} and set(h['batch']['exponents']) == {'D'}
  assert len(h['lr']['ci95']['exponents']['N']) == 2
  assert len(h['cells']) == 4 and all(c['edge'] is None and c['fitted'] for c in h['cells'])
  assert all(c['lr'] == pytest.approx(2e-3) for c in h['cells'])
  for name in ('loss_vs_lr', 'lr_optimum', 'batch_optimum'):
    assert (tmp_path / 'out' / f'{name}.png').is_file()
  assert len(pd.read_csv(tmp_path / 'out' / 'bootstrap.csv')) == 20


def write_csv(path, table: pd.DataFrame, **columns) -> str:
  table.rename(columns=columns).to_csv(path, index=False)
  return str(path)


@pytest.mark.parametrize('case, edit, flags, words', [
    ('one learning rate', lambda t: t[t['lr'] == t['lr'].iloc[0]], [], 'learning rates'),
    ('fewer than 3 runs', lambda t: t.groupby(['N', 'D']).head(2), [], '3 runs'),
    ('non-positive lr', lambda t: t.assign(lr=np.where(t.index == 5, -1.0, t['lr'])), [],
     'lr: -1.0'),
    ('every cell on the edge', lambda t: t[t['lr'] <= t.groupby(['N', 'D'])['lr'].transform(
        'min')  * 2], [], 'every cell'),
    ('ambiguous batch unit', lambda t: t, ['--columns=lr=lr,batch=bs'], 'batch-unit'),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, case, edit, flags,
                                                         words):
  table = edit(synthetic_grid(np.random.default_rng(0)))
  csv = write_csv(tmp_path / 'grid.csv', table, **({'batch': 'bs'} if flags else
                                                   {'batch': 'batch_tokens'}))
  columns = flags or ['--columns=lr=lr,batch=batch_tokens']
  code, lines = run_fit([f'--csv={csv}', '--law=hparams', f'--out={tmp_path / "out"}', *columns],
                        capsys)
  assert code == 2 and len(lines) == 1 and lines[0].startswith('error:'), lines
  assert words in lines[0], lines
  assert not (tmp_path / 'out').exists()


def test_plan_prints_the_learning_rate_and_batch_with_intervals(tmp_path, capsys):
  csv = write_csv(tmp_path / 'grid.csv', synthetic_grid(np.random.default_rng(1)),
                  batch='batch_tokens')
  assert run_fit([f'--csv={csv}', '--law=hparams', '--columns=batch=batch_tokens',
                  '--bootstrap=50', f'--out={tmp_path / "hp"}'], capsys)[0] == 0
  chin = pd.DataFrame([{'N': N, 'D': D, 'loss': 1.8 + 400 / N**0.34 + 400 / D**0.28}
                       for N in np.geomspace(1e8, 1e9, 5) for D in np.geomspace(1e10, 4e10, 5)])
  chin.to_csv(tmp_path / 'chin.csv', index=False)
  assert run_fit([f'--csv={tmp_path / "chin.csv"}', '--bootstrap=20', '--cold-share=0',
                  f'--out={tmp_path / "chin"}'], capsys)[0] == 0
  try:
    cli.run(plan.main, [f'--fit={tmp_path / "chin" / "fit.json"}', '--flops=1e20',
                        '--hardware=h100', f'--hparams={tmp_path / "hp" / "fit.json"}'])
  except SystemExit as e:
    pytest.fail(f'plan exited {e.code}')
  out = capsys.readouterr().out.splitlines()
  rows = {line.split()[0]: line for line in out if line.startswith(('learning', 'batch', 'steps'))}
  assert set(rows) == {'learning', 'batch', 'steps'}
  assert all(line.rstrip().endswith(']') for line in rows.values()), rows  # each with its CI
