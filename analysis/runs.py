"""Load a folder of run directories (docs/run-format.md) into pandas, without JAX or `scaling/`.

`load(root)` finds every run directory under root (a directory holding run.json, metrics.jsonl
or config.json) and returns one table row per completed run plus the per-step curves. Runs that
are not `completed` (failed, diverged, running, preempted, or without run.json) are left out,
named in one warning, and so are WSD trunks (runs that another run's `forked_from` names): they
end at a constant learning rate, and their cooldown branches are the (N, D) points. Branches of
one trunk share its training, so they carry the trunk's name in `cluster` and the bootstrap
resamples them together.

Each run's config.json is read here too (`configs`), once: the table's `schedule` comes from it,
and so will every other field of a run's recipe that a law needs (its learning rate at each step).

A run's final values (step, tokens, FLOPs, losses and every `eval_*` field, such as
`eval_loss_stderr`) come from run.json's `final`, which the trainer writes once training stops;
metrics.jsonl fills in what an older run.json lacks. When the last eval row of metrics.jsonl
disagrees with `final` (a line lost to a kill mid-write, say), one warning names the runs.
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
  configs: dict[str, dict]  # run name -> its config.json ({} when missing or unreadable)


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
      'eval_loss_stderr': [r.get('eval_loss_stderr', np.nan) for r in rows],
      'N': meta.get('n_params'),
      'N_nonembedding': meta.get('n_params_nonembedding'),
  }).astype({'step': float, 'tokens': float})


def _last_eval_row(rows: list[dict]) -> dict:
  """The last eval row after step 0 (the step-0 eval describes the initialised model)."""
  evals = [r for r in rows if 'eval_loss' in r and (r.get('step') or 0) > 0]
  return evals[-1] if evals else {}


def _eval_fields(row: dict) -> dict:
  return {k: v for k, v in row.items() if k.startswith('eval_') and isinstance(v, (int, float))}


def _disagreement(final: dict, last_eval: dict) -> str | None:
  """Why metrics.jsonl's last eval row does not match run.json's final, or None."""
  if 'eval_loss' not in final:
    return None
  if not last_eval:
    return 'metrics.jsonl has no eval row'
  if not np.isclose(last_eval['eval_loss'], final['eval_loss'], rtol=1e-9, atol=0):
    return (f'metrics.jsonl ends with eval_loss {last_eval["eval_loss"]:.6g} at step '
            f'{last_eval.get("step")}, run.json final says {final["eval_loss"]:.6g}')
  return None


def _summary(name: str, meta: dict, curve: pd.DataFrame, rows: list[dict]) -> dict:
  final = meta.get('final') or {}
  last = curve.iloc[-1] if len(curve) else pd.Series(dtype=float)
  train = curve['train_loss'].dropna()
  evals = curve.loc[curve['step'] > 0, 'eval_loss'].dropna()
  final_flops = final.get('flops') or {}
  ev = {**_eval_fields(_last_eval_row(rows)), **_eval_fields(final)}
  dataset = meta.get('dataset') or {}
  return {
      'run': name, 'task': meta.get('task'), 'status': meta.get('status'),
      'N': meta.get('n_params'), 'N_nonembedding': meta.get('n_params_nonembedding'),
      'D': final.get('tokens', last.get('tokens', np.nan)),
      **{f'C_{c}': final_flops.get(c, last.get(f'C_{c}', np.nan)) for c in _CONVENTIONS},
      'train_loss': final.get('train_loss', train.iloc[-1] if len(train) else np.nan),
      **ev,
      'eval_loss': ev.get('eval_loss', np.nan),
      'eval_loss_stderr': ev.get('eval_loss_stderr', np.nan),
      'best_eval_loss': min([*evals, ev['eval_loss']]) if 'eval_loss' in ev else np.nan,
      'steps': final.get('step', last.get('step', np.nan)),
      'wall_time_s': meta.get('wall_time_s'),
      'budget': meta.get('budget') or np.nan,  # the sweep's IsoFLOP budget, when it set one
      'U': (meta.get('corpus') or {}).get('tokens_per_epoch') or np.nan,  # unique train tokens
      'dataset': dataset.get('name'), 'dataset_fingerprint': dataset.get('fingerprint'),
      'tokenizer': _tokenizer((meta.get('corpus') or {}).get('tokenizer')),
      'vocab_size': (meta.get('model') or {}).get('vocab_size'),
  }


def _tokenizer(t) -> str | None:
  """run.json's corpus.tokenizer ({'name', 'vocab_size', 'sha256', ...}) as one comparable string."""
  if not isinstance(t, dict):
    return None if t is None else str(t)
  rest = ', '.join(f'{k}={t[k]}' for k in sorted(t) if k != 'name' and t[k] is not None)
  return f'{t.get("name")} ({rest})' if rest else str(t.get('name'))


def _why_excluded(meta: dict | None) -> str | None:
  if meta is None:
    return 'no run.json'
  status = meta.get('status')
  if status == 'failed' and meta.get('error'):
    return f'failed: {meta["error"]}'
  return None if status == 'completed' else str(status)


def _read_json(path: pathlib.Path) -> dict | None:
  try:
    value = json.loads(path.read_text())
  except (OSError, UnicodeDecodeError, json.JSONDecodeError):
    return None
  return value if isinstance(value, dict) else None


def _cluster(d: pathlib.Path, metas: dict, names: dict) -> str:
  """The name of the run at the root of d's forks (d's own name when it was not forked)."""
  seen = set()
  while (m := metas.get(d)) and m.get('forked_from') and d not in seen:
    seen.add(d)
    d = pathlib.Path(m['forked_from']['workdir']).resolve()
  return names.get(d, str(d))


def load(root: str | pathlib.Path) -> Runs:
  root = pathlib.Path(root)
  if not root.is_dir():
    raise errors.InputError(f'{root} is not a directory: pass a folder of run directories to '
                            '--runs')
  dirs = run_dirs(root)
  if not dirs:
    raise errors.InputError(f'no run directories under {root} (none holds run.json): check --runs')
  metas = {d.resolve(): _read_json(d / 'run.json') for d in dirs}
  names = {d.resolve(): d.relative_to(root).as_posix() if d != root else d.name for d in dirs}
  trunks = {pathlib.Path(m['forked_from']['workdir']).resolve() for m in metas.values()
            if m and m.get('forked_from')}
  rows, curves, excluded, disagree, configs = [], [], {}, {}, {}
  for d, meta in metas.items():
    name = names[d]
    why = _why_excluded(meta)
    if why is None and d in trunks:
      why = 'a trunk of cooldown branches: its branches are the points'
    metrics = [] if why else read_metrics(d / 'metrics.jsonl')
    curve = None if why else _curve(name, meta, metrics)
    if curve is not None and not len(curve) and not meta.get('final'):
      why = 'no metrics'
    if why:
      excluded[name] = why
      continue
    if (why_not := _disagreement(meta.get('final') or {}, _last_eval_row(metrics))):
      disagree[name] = why_not
    configs[name] = _read_json(d / 'config.json') or {}
    rows.append({**_summary(name, meta, curve, metrics), 'cluster': _cluster(d, metas, names),
                 'schedule': configs[name].get('schedule')})
    curves.append(curve)
  if excluded:
    listed = ', '.join(f'{k} ({v})' for k, v in excluded.items())
    warnings.warn(f'excluded {len(excluded)} of {len(dirs)} runs: {listed}', stacklevel=2)
  if disagree:
    listed = '; '.join(f'{k}: {v}' for k, v in disagree.items())
    warnings.warn(f'{len(disagree)} runs\' metrics.jsonl disagree with run.json\'s final, which is '
                  f'used: {listed}', stacklevel=2)
  if not rows:
    raise errors.InputError(f'no completed runs under {root} ({len(excluded)} excluded): '
                            'wait for runs to finish or point --runs elsewhere')
  return Runs(table=pd.DataFrame(rows), curves=pd.concat(curves, ignore_index=True),
              excluded=excluded, configs=configs)


MIX_COLUMNS = {'task': 'tasks', 'dataset_fingerprint': 'datasets (by fingerprint)',
               'tokenizer': 'tokenizers', 'vocab_size': 'vocabulary sizes'}


def mixes(table: pd.DataFrame) -> list[str]:
  """What a table of runs mixes that one scaling law should not: tasks, datasets, tokenizers."""
  out = []
  for col, what in MIX_COLUMNS.items():
    if col in table:
      values = sorted({str(v) for v in table[col] if v is not None and v == v})
      if len(values) > 1:
        shown = ', '.join(values[:4]) + (', ...' if len(values) > 4 else '')
        out.append(f'{len(values)} {what} ({shown})')
  return out
