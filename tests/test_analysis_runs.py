"""analysis.runs on run directories written here by hand, following docs/run-format.md."""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from analysis import cli
from analysis import errors
from analysis import fit
from analysis import laws
from analysis import points
from analysis import runs
from analysis import study


def write_run(root, name, status='completed', n_params=1000, steps=(0, 10, 20), tokens_per_step=64,
              losses=(5.0, 4.0, 3.0), truncate=False, error=None, stderr=None, fingerprint='0',
              task='lm', schedule=None):
  """A run directory: config.json, run.json and metrics.jsonl with train and eval rows; with
  `stderr`, eval rows and final carry eval_loss_stderr = stderr × eval_loss."""
  d = root / name
  d.mkdir(parents=True)
  (d / 'config.json').write_text(json.dumps({'seed': 0, **({'schedule': schedule} if schedule
                                                             else {})}))
  fpt = {'kaplan': 6.0 * n_params, 'chinchilla': 7.0 * n_params}
  lines = []
  for step, loss in zip(steps, losses):
    tokens = step * tokens_per_step
    flops = {k: v * tokens for k, v in fpt.items()}
    common = {'step': step, 'tokens': tokens, 'flops': flops}
    if step:
      lines.append({**common, 'lr': 1e-3, 'train_loss': loss + 0.1, 'grad_norm': 1.0,
                    'step_time': 0.1, 'tokens_per_s': 640.0, 'mfu': 0.3})
    lines.append({**common, 'eval_loss': loss, 'eval_bits_per_byte': loss / np.log(2),
                  **({'eval_loss_stderr': stderr * loss} if stderr else {})})
  text = '\n'.join(json.dumps(r) for r in lines) + '\n'
  if truncate:
    text += '{"step": 30, "tokens": 19'
  (d / 'metrics.jsonl').write_text(text)
  last = lines[-1]
  meta = {
      'format_version': 1, 'task': task, 'model': {'n_layer': 2, 'd_model': 16},
      'n_params': n_params, 'n_params_nonembedding': n_params // 2, 'flops_per_token': fpt,
      'tokens_per_step': tokens_per_step, 'steps': steps[-1],
      'corpus': {'tokenizer': {'name': 'byte', 'vocab_size': 256}, 'tokens_per_epoch': None},
      'mesh': {'data': 1, 'fsdp': 1, 'tensor': 1}, 'device_kind': 'cpu', 'device_count': 1,
      'process_count': 1, 'versions': {}, 'git_commit': None,
      'dataset': {'name': 'x', 'fingerprint': fingerprint}, 'seed': 0, 'status': status,
      'error': error,
      'wall_time_s': 1.5, 'future_field': {'readers': 'must ignore it'},
      'final': {'step': last['step'], 'tokens': last['tokens'], 'flops': last['flops'],
                'train_loss': losses[-1] + 0.1, 'eval_loss': losses[-1],
                **({'eval_loss_stderr': stderr * losses[-1]} if stderr else {})},
  }
  (d / 'run.json').write_text(json.dumps(meta))
  return d


def test_one_row_per_completed_run_with_hand_values(tmp_path):
  write_run(tmp_path, 'a', n_params=1000, losses=(5.0, 3.0, 3.5))
  write_run(tmp_path, 'sweep/b', n_params=2000, steps=(0, 10, 20, 40), losses=(6, 4, 3, 2.5))
  r = runs.load(tmp_path)
  t = r.table.set_index('run')
  assert list(t.index) == ['a', 'sweep/b']
  a = t.loc['a']
  assert (a['N'], a['N_nonembedding'], a['D']) == (1000, 500, 20 * 64)
  assert (a['C_kaplan'], a['C_chinchilla']) == (6000.0 * 1280, 7000.0 * 1280)
  assert (a['train_loss'], a['eval_loss'], a['best_eval_loss']) == (3.6, 3.5, 3.0)
  assert t.loc['sweep/b', 'D'] == 40 * 64 and t.loc['sweep/b', 'best_eval_loss'] == 2.5
  assert len(r.curves) == 5 + 7  # per run: one eval row per step, one train row per step > 0
  assert set(r.curves['run']) == {'a', 'sweep/b'} and not r.excluded


def test_truncated_last_line_is_skipped(tmp_path):
  write_run(tmp_path, 'killed', truncate=True)
  r = runs.load(tmp_path)
  assert r.table.loc[0, 'D'] == 20 * 64 and r.curves['step'].max() == 20


def test_final_eval_comes_from_run_json_and_a_lost_eval_row_is_named(tmp_path):
  """The last eval row was cut mid-write; run.json's final still has it (eval_loss 3.0)."""
  d = write_run(tmp_path, 'cut', losses=(5.0, 4.0, 3.0), stderr=0.01)
  lines = (d / 'metrics.jsonl').read_text().splitlines()
  (d / 'metrics.jsonl').write_text('\n'.join(lines[:-1]) + '\n' + lines[-1][:25])
  write_run(tmp_path, 'whole', losses=(5.0, 4.0, 2.0))
  with pytest.warns(UserWarning, match='1 runs') as caught:
    t = runs.load(tmp_path).table.set_index('run')
  message = str(caught[0].message)
  assert 'cut: metrics.jsonl ends with eval_loss 4 at step 10, run.json final says 3' in message
  assert 'whole' not in message
  assert t.loc['cut', 'eval_loss'] == 3.0 and t.loc['cut', 'D'] == 20 * 64
  assert t.loc['cut', 'eval_loss_stderr'] == pytest.approx(0.03)
  assert t.loc['cut', 'best_eval_loss'] == 3.0
  assert np.isnan(t.loc['whole', 'eval_loss_stderr'])  # a run logged before the field: tolerated


def test_branches_of_one_trunk_share_a_cluster(tmp_path):
  trunk = write_run(tmp_path, 'trunk', steps=(0, 10, 20, 40), losses=(6, 4, 3, 2.8))
  for name, parent in (('b1', trunk), ('b2', trunk)):
    d = write_run(tmp_path, name, steps=(20, 30), losses=(3, 2.5))
    meta = json.loads((d / 'run.json').read_text())
    meta['forked_from'] = {'workdir': str(parent), 'step': 20}
    (d / 'run.json').write_text(json.dumps(meta))
  write_run(tmp_path, 'alone')
  with pytest.warns(UserWarning, match='trunk'):
    t = runs.load(tmp_path).table.set_index('run')
  assert t['cluster'].to_dict() == {'alone': 'alone', 'b1': 'trunk', 'b2': 'trunk'}


def test_malformed_middle_line_is_an_input_error(tmp_path):
  d = write_run(tmp_path, 'bad')
  lines = (d / 'metrics.jsonl').read_text().splitlines()
  (d / 'metrics.jsonl').write_text('\n'.join([lines[0], '{oops', *lines[1:]]) + '\n')
  with pytest.raises(errors.InputError, match='metrics.jsonl:2'):
    runs.load(tmp_path)


def test_failed_diverged_and_unfinished_runs_are_excluded_in_one_warning(tmp_path):
  write_run(tmp_path, 'good')
  write_run(tmp_path, 'blew_up', status='diverged')
  write_run(tmp_path, 'crashed', status='failed', error='OOM at step 12')
  write_run(tmp_path, 'still_going', status='running')
  (tmp_path / 'no_meta').mkdir()
  (tmp_path / 'no_meta' / 'metrics.jsonl').write_text('')
  with pytest.warns(UserWarning) as caught:
    r = runs.load(tmp_path)
  assert len(caught) == 1
  message = str(caught[0].message)
  for name in ('blew_up (diverged)', 'crashed (failed: OOM at step 12)', 'still_going (running)',
               'no_meta (no run.json)'):
    assert name in message
  assert list(r.table['run']) == ['good'] and set(r.curves['run']) == {'good'}


def test_wsd_trunks_are_left_out_and_their_branches_kept(tmp_path):
  trunk = write_run(tmp_path, 'trunk', steps=(0, 10, 20, 40), losses=(6, 4, 3, 2.8))
  branch = write_run(tmp_path, 'branch', steps=(20, 30), losses=(3, 2.5))
  meta = json.loads((branch / 'run.json').read_text())
  meta['forked_from'] = {'workdir': str(trunk), 'step': 20}
  (branch / 'run.json').write_text(json.dumps(meta))
  with pytest.warns(UserWarning, match='trunk'):
    r = runs.load(tmp_path)
  assert list(r.table['run']) == ['branch'] and r.table.loc[0, 'D'] == 30 * 64


def test_empty_folder_and_no_completed_runs_are_input_errors(tmp_path):
  with pytest.raises(errors.InputError, match='no run directories'):
    runs.load(tmp_path)
  write_run(tmp_path, 'x', status='diverged')
  with pytest.warns(UserWarning), pytest.raises(errors.InputError, match='no completed runs'):
    runs.load(tmp_path)


def test_reading_runs_imports_neither_jax_nor_scaling():
  code = ('import sys, analysis.runs, analysis.fit, analysis.plan; '
          'bad = [m for m in sys.modules if m.split(".")[0] in ("jax", "scaling")]; '
          'sys.exit(f"imported {bad}" if bad else 0)')
  subprocess.run([sys.executable, '-c', code], check=True, cwd=pathlib.Path(__file__).parents[1])


def test_fit_command_line_on_run_directories(tmp_path):
  truth = dict(E=2.0, x0=1e6, alpha=0.3)
  for i, n in enumerate(int(n) for n in np.geomspace(1e3, 1e6, 8)):
    C = 7.0 * n * 20 * 64  # chinchilla-convention FLOPs after 20 steps of 64 tokens
    write_run(tmp_path / 'runs', f'r{i}', n_params=n,
              losses=(9.0, 8.0, laws.saturating_power(C, **truth)))
  write_run(tmp_path / 'runs', 'blew_up', status='diverged')
  out = tmp_path / 'out'
  with pytest.warns(UserWarning, match='blew_up'):
    fit.main([f'--runs={tmp_path / "runs"}', '--law=power', f'--out={out}'])
  result = json.loads((out / 'fit.json').read_text())
  assert list(result)[:7] == ['law', 'n_points', 'params', 'objective', 'a', 'b', 'converged']
  assert result['law'] == 'power' and result['a'] is None and result['n_points'] == 8
  for k, v in truth.items():
    assert result['params'][k] == pytest.approx(v, rel=1e-3), k
  assert not (out / 'bootstrap.csv').exists()
  assert result['units']['N'] == 'all parameters (column N)'
  assert result['units']['D'] == 'tokens (bytes: the byte-level tokenizer)'


def power_law_runs(root, truth, sizes=8, **kw):
  """Runs whose final eval loss is E + (x0/N)^alpha in the total parameter count N."""
  for i, n in enumerate(int(n) for n in np.geomspace(1e3, 1e6, sizes)):
    write_run(root, f'r{i}', n_params=2 * (n // 2), losses=(9.0, 8.0,
                                                            laws.saturating_power(2 * (n // 2),
                                                                                  **truth)), **kw)


def test_nonembedding_count_is_fitted_when_asked(tmp_path):
  # run.json's n_params_nonembedding is n_params // 2 here: x0 halves, E and alpha stay
  truth = dict(E=2.0, x0=1e4, alpha=0.3)
  power_law_runs(tmp_path / 'runs', truth)
  for n in ('total', 'nonembedding'):
    fit.main([f'--runs={tmp_path / "runs"}', '--law=power', '--x=N', f'--n={n}',
              f'--out={tmp_path / n}'])
  total, nonemb = (json.loads((tmp_path / n / 'fit.json').read_text()) for n in ('total',
                                                                                  'nonembedding'))
  assert total['params']['x0'] == pytest.approx(1e4, rel=1e-3)
  assert nonemb['params']['x0'] == pytest.approx(0.5e4, rel=1e-3)
  assert nonemb['params']['alpha'] == pytest.approx(0.3, rel=1e-3)
  assert nonemb['units']['N'] == 'non-embedding parameters (column N_nonembedding)'


def test_runs_that_mix_datasets_or_tasks_are_refused_unless_allowed(tmp_path, capsys):
  truth = dict(E=2.0, x0=1e4, alpha=0.3)
  power_law_runs(tmp_path / 'runs', truth)
  write_run(tmp_path / 'runs', 'other_data', n_params=5000, losses=(9.0, 8.0, 2.5),
            fingerprint='f00d')
  argv = [f'--runs={tmp_path / "runs"}', '--law=power', '--x=N', f'--out={tmp_path / "o"}']
  with pytest.raises(SystemExit) as e:
    cli.run(fit.main, argv)
  err = capsys.readouterr().err
  assert e.value.code == 2 and '2 datasets (by fingerprint) (0, f00d)' in err
  assert '--allow-mixed' in err and err.count('\n') == 1 and not (tmp_path / 'o').exists()
  cli.run(fit.main, argv + ['--allow-mixed'])
  assert 'warning: fitting runs that mix 2 datasets' in capsys.readouterr().err
  assert json.loads((tmp_path / 'o' / 'fit.json').read_text())['mixed'] == [
      '2 datasets (by fingerprint) (0, f00d)']
  write_run(tmp_path / 'runs', 'a_dit', n_params=7000, losses=(9.0, 8.0, 2.5), task='diffusion')
  with pytest.raises(errors.InputError, match='2 tasks \\(diffusion, lm\\)'):
    fit.main(argv)


def test_a_fit_reads_each_run_directory_once(tmp_path, monkeypatch):
  power_law_runs(tmp_path / 'runs', dict(E=2.0, x0=1e4, alpha=0.3), schedule='cosine')
  read = []
  real = runs._read_json
  monkeypatch.setattr(runs, '_read_json', lambda path: read.append(path.name) or real(path))
  fit.main([f'--runs={tmp_path / "runs"}', '--law=power', '--x=N', f'--out={tmp_path / "o"}'])
  assert sorted(read) == sorted(['run.json', 'config.json'] * 8)
  assert (runs.load(tmp_path / 'runs').table['schedule'] == 'cosine').all()


def test_duplicates_in_a_folder_of_runs_are_named_by_run():
  table = pd.DataFrame({'run': ['a', 'b', 'copy_of_a'], 'N': [1e3, 2e3, 1e3],
                             'D': [1e5, 1e5, 1e5], 'C': [6e8, 1.2e9, 6e8], 'loss': [3.0, 2.9, 3.0]})
  groups = points.duplicates(table)
  assert groups == [[0, 2]] and study._described(table, groups[0]) == 'a = copy_of_a'
  clustered = points.with_duplicates_clustered(table.assign(cluster=['a', 'b', 'copy_of_a']), groups)
  assert list(clustered['cluster']) == ['a', 'b', 'a']


def test_duplicate_groups_match_a_pairwise_search():
  """points.duplicates (sorted by N, windowed) against every pair compared, joined by hand."""
  rng = np.random.default_rng(0)
  base = pd.DataFrame({k: rng.choice([1.0, 2.0, 3.0], 60) * 10**rng.integers(3, 5, 60)
                       for k in points.CANONICAL})  # many equal N, some equal (N, D)
  copies = base.iloc[rng.integers(0, 60, 25)] * (1 + rng.choice([0, 4e-6, 3e-5], (25, 1)))
  table = pd.concat([base, copies], ignore_index=True)
  v = table.to_numpy()
  same = np.array([[np.all(np.abs(a - b) <= 1e-5 * np.maximum(np.abs(a), np.abs(b))) for b in v]
                   for a in v])
  label = list(range(len(v)))
  for _ in range(len(v)):  # propagate the smallest label along every edge until nothing changes
    label = [min(label[j] for j in np.flatnonzero(same[i])) for i in range(len(v))]
  want = sorted(sorted(np.flatnonzero(np.array(label) == g).tolist()) for g in set(label)
                if label.count(g) > 1)
  assert points.duplicates(table) == want and len(want) > 5
