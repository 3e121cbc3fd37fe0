"""Load a folder of run directories (docs/run-format.md) into pandas, without JAX or `scaling/`.

`load(root)` finds every run directory under root (a directory holding run.json, metrics.jsonl
or config.json) and returns one table row per completed run plus the per-step curves. Runs that
are not `completed` (failed, diverged, running, preempted, or without run.json) are left out,
named in one warning, and so are WSD trunks (runs that another run's `forked_from` names): they
end at a constant learning rate, and their cooldown branches are the (N, D) points.
"""

import dataclasses
import json
import os
import pathlib
import warnings

import numpy as np
import pandas as pd

from analysis import errors

_MARKERS = ('run.json', 'metrics.jsonl', 'config.json')
_CONVENTIONS = ('chinchilla', 'kaplan')


@dataclasses.dataclass
class Runs:
  table: pd.DataFrame  # one row per completed run
  curves: pd.DataFrame  # one row per logged step of every completed run
  excluded: dict[str, str]  # run name -> why it was left out


def run_dirs(root: pathlib.Path) -> list[pathlib.Path]:
  """Directories under root (root included) that look like runs; runs do not nest."""
  found = []
  for dirpath, dirnames, filenames in os.walk(root):
    if any(m in filenames for m in _MARKERS):
      found.append(pathlib.Path(dirpath))
      dirnames.clear()
    dirnames.sort()
  return found


def read_metrics(path: pathlib.Path) -> list[dict]:
  """Rows of metrics.jsonl; a truncated last line (killed mid-write) is skipped."""
  if not path.is_file():
    return []
  lines = path.read_text().splitlines()
  rows = []
  for i, line in enumerate(lines):
    if not line.strip():
      continue
    try:
      rows.append(json.loads(line))
    except json.JSONDecodeError as e:
      if i == len(lines) - 1:
        break
      raise errors.InputError(f'{path}:{i + 1} is not JSON ({e.msg}); only the last line may be '
                              'truncated: fix or remove the line') from e
  return rows


def _curve(name: str, meta: dict, rows: list[dict]) -> pd.DataFrame:
  flops = [r.get('flops') or {} for r in rows]
  return pd.DataFrame({
      'run': name,
      'step': [r.get('step') for r in rows],
      'tokens': [r.get('tokens') for r in rows],
      **{f'C_{c}': [f.get(c, np.nan) for f in flops] for c in _CONVENTIONS},
      'train_loss': [r.get('train_loss', np.nan) for r in rows],
      'eval_loss': [r.get('eval_loss', np.nan) for r in rows],
      'N': meta.get('n_params'),
      'N_nonembedding': meta.get('n_params_nonembedding'),
  }).astype({'step': float, 'tokens': float})


def _summary(name: str, meta: dict, curve: pd.DataFrame) -> dict:
  final = meta.get('final') or {}
  last = curve.iloc[-1] if len(curve) else pd.Series(dtype=float)
  train = curve['train_loss'].dropna()
  evals = curve.loc[curve['step'] > 0, 'eval_loss'].dropna()
  final_flops = final.get('flops') or {}
  return {
      'run': name, 'task': meta.get('task'), 'status': meta.get('status'),
      'N': meta.get('n_params'), 'N_nonembedding': meta.get('n_params_nonembedding'),
      'D': last.get('tokens', final.get('tokens', np.nan)),
      **{f'C_{c}': last.get(f'C_{c}', final_flops.get(c, np.nan)) for c in _CONVENTIONS},
      'train_loss': train.iloc[-1] if len(train) else final.get('train_loss', np.nan),
      'eval_loss': evals.iloc[-1] if len(evals) else final.get('eval_loss', np.nan),
      'best_eval_loss': evals.min() if len(evals) else final.get('eval_loss', np.nan),
      'steps': last.get('step', final.get('step', np.nan)),
      'wall_time_s': meta.get('wall_time_s'),
  }


def _why_excluded(meta: dict | None) -> str | None:
  if meta is None:
    return 'no run.json'
  status = meta.get('status')
  if status == 'failed' and meta.get('error'):
    return f'failed: {meta["error"]}'
  return None if status == 'completed' else str(status)


def _read_meta(path: pathlib.Path) -> dict | None:
  try:
    return json.loads(path.read_text())
  except (OSError, json.JSONDecodeError):
    return None


def load(root: str | pathlib.Path) -> Runs:
  root = pathlib.Path(root)
  if not root.is_dir():
    raise errors.InputError(f'{root} is not a directory: pass a folder of run directories to '
                            '--runs')
  dirs = run_dirs(root)
  if not dirs:
    raise errors.InputError(f'no run directories under {root} (none holds run.json): check --runs')
  metas = {d: _read_meta(d / 'run.json') for d in dirs}
  trunks = {pathlib.Path(m['forked_from']['workdir']).resolve() for m in metas.values()
            if m and m.get('forked_from')}
  rows, curves, excluded = [], [], {}
  for d, meta in metas.items():
    name = d.relative_to(root).as_posix() if d != root else d.name
    why = _why_excluded(meta)
    if why is None and d.resolve() in trunks:
      why = 'a trunk of cooldown branches: its branches are the points'
    curve = None if why else _curve(name, meta, read_metrics(d / 'metrics.jsonl'))
    if curve is not None and not len(curve) and not meta.get('final'):
      why = 'no metrics'
    if why:
      excluded[name] = why
      continue
    rows.append(_summary(name, meta, curve))
    curves.append(curve)
  if excluded:
    listed = ', '.join(f'{k} ({v})' for k, v in excluded.items())
    warnings.warn(f'excluded {len(excluded)} of {len(dirs)} runs: {listed}', stacklevel=2)
  if not rows:
    raise errors.InputError(f'no completed runs under {root} ({len(excluded)} excluded): '
                            'wait for runs to finish or point --runs elsewhere')
  return Runs(table=pd.DataFrame(rows), curves=pd.concat(curves, ignore_index=True),
              excluded=excluded)
