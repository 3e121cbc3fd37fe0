"""Convert Zhang et al. 2024's critical-batch-size numbers into data/critical_batch/ (run once).

  python -m experiments.convert_critical_batch --git-dir=PATH/critical-batch-size/.git
      [--commit=c5b509d] [--out=data/critical_batch]

"How Does Critical Batch Size Scale in Pre-training?" (Zhang, Morwani, Vyas, Wu, Zou, Ghai, Foster,
Kakade; arXiv:2410.21676), repository hlzhang109/critical-batch-size, notebook
plots/chinchilla.ipynb. The notebook's fit cell holds the steps to the target loss as a dict
literal (`results = {...}`, one list per model over `batch_sizes`); the first cell holds the
target losses (`goal_losses`) and the sequence length its runs were filtered on. Those literals are
read with ast.literal_eval, never executed. The published critical batch sizes and law are read
from the same cells' stored outputs. Writes zhang-chinchilla.csv (a row per model and batch size),
their LICENSE unchanged, and manifest.json (source, commit, conventions, published values, the
CSV's sha256).
"""

import argparse
import ast
import csv
import hashlib
import io
import json
import pathlib
import re
import subprocess

REPO = 'hlzhang109/critical-batch-size'
NOTEBOOK = 'plots/chinchilla.ipynb'
CSV_NAME = 'zhang-chinchilla.csv'


def git_show(git_dir: str, commit: str, path: str) -> str:
  return subprocess.run(['git', f'--git-dir={git_dir}', 'show', f'{commit}:{path}'], check=True,
                        capture_output=True, text=True).stdout


def assigned_literal(source: str, name: str):
  """The value of the first top-level `name = <literal>` in a cell's source."""
  for node in ast.parse(source).body:
    if isinstance(node, ast.Assign) and [getattr(t, 'id', None) for t in node.targets] == [name]:
      return ast.literal_eval(node.value)
  raise ValueError(f'no literal assignment to {name} in the cell')


def cell_text(cell: dict) -> str:
  """A code cell's stored outputs, as one string (stream text and plain-text results)."""
  parts = []
  for out in cell.get('outputs', []):
    parts.append(''.join(out.get('text', '')) + ''.join(out.get('data', {}).get('text/plain', '')))
  return '\n'.join(parts)


def read_notebook(notebook: dict) -> dict:
  sources = [''.join(c['source']) for c in notebook['cells']]
  fit_cell = next(i for i, s in enumerate(sources) if s.lstrip().startswith('results = {'))
  first = sources[1]
  printed = cell_text(notebook['cells'][fit_cell])
  law = re.search(r'zero offset, log-scale\): fitted log\(cbs\) = log\(([\d.e+-]+) \* '
                  r'model_size\^\(([\d.e+-]+)\)\)', printed)
  return {
      'cell': fit_cell,
      'steps': assigned_literal(sources[fit_cell], 'results'),
      'batch_sizes': [2**i for i in range(6, 15)],  # `[2**i for i in range(6, 15)]` in both cells
      'sizes_m': assigned_literal(sources[fit_cell], 'scaling_law_model_sizes'),
      'names': assigned_literal(sources[fit_cell], 'model_size_names'),
      'goal_losses': assigned_literal(first, 'goal_losses'),
      'seq_len': int(re.search(r'"config.model.max_sequence_length": (\d+)', first).group(1)),
      'cbs': [float(x) for x in re.findall(r'Critical batch size: ([\d.]+)', printed)],
      'law': {'coefficient': float(law.group(1)), 'exponent': float(law.group(2))},
  }


def write(out: pathlib.Path, nb: dict, commit: str, licence: str) -> None:
  out.mkdir(parents=True, exist_ok=True)
  rows = io.StringIO()
  w = csv.writer(rows, lineterminator='\n')
  w.writerow(['model', 'N_M', 'batch_size', 'seq_len', 'target_loss', 'steps'])
  for name, size in zip(nb['names'], nb['sizes_m']):
    for batch, steps in zip(nb['batch_sizes'], nb['steps'][name]):
      w.writerow([name, size, batch, nb['seq_len'], nb['goal_losses'][name], steps])
  (out / CSV_NAME).write_text(rows.getvalue())
  (out / 'LICENSE').write_text(licence)
  manifest = {
      'source': f'https://github.com/{REPO}', 'commit': commit, 'file': NOTEBOOK,
      'cell': nb['cell'], 'licence': 'MIT (LICENSE, copied unchanged)',
      'csv': CSV_NAME, 'sha256': hashlib.sha256((out / CSV_NAME).read_bytes()).hexdigest(),
      'conventions': {
          'N_M': 'model size in millions of parameters, as the notebook names the models '
                 '(scaling_law_model_sizes); the notebook does not say embedding in or out',
          'batch_size': 'sequences per optimizer step (global_train_batch_size)',
          'seq_len': 'tokens per sequence (the runs were selected on model.max_sequence_length)',
          'steps': 'optimizer steps to reach target_loss (C4 validation cross-entropy), the '
                   'fewest over the runs of that model and batch size',
      },
      'published': {
          'definition': 'fit log S = log(a + b/B) by least squares in log S (scipy curve_fit); '
                        'the critical batch solves S(B) = 1.2 x S(256) x 256/B, so '
                        'B = 1.2 x 256 + (b/a) / 5 (their fsolve of b - 5aB + 5a x 1.2 x 256)',
          'reference_batch': 256, 'overhead': 0.2,
          'critical_batch': dict(zip(nb['names'], nb['cbs'])),
          'law': {**nb['law'], 'form': 'CBS = coefficient x N_M^exponent, least squares in log '
                                       'CBS (zero offset)'},
      },
  }
  (out / 'manifest.json').write_text(json.dumps(manifest, indent=1) + '\n')


def main() -> None:
  p = argparse.ArgumentParser(prog='python -m experiments.convert_critical_batch')
  p.add_argument('--git-dir', required=True, help=f'a git mirror of {REPO}')
  p.add_argument('--commit', default='c5b509d8cf276bb40388172a08f9d6f644cf44dc')
  p.add_argument('--out', default='data/critical_batch')
  args = p.parse_args()
  commit = subprocess.run(['git', f'--git-dir={args.git_dir}', 'rev-parse', args.commit],
                          check=True, capture_output=True, text=True).stdout.strip()
  notebook = json.loads(git_show(args.git_dir, commit, NOTEBOOK))
  write(pathlib.Path(args.out), read_notebook(notebook), commit,
        git_show(args.git_dir, commit, 'LICENSE'))


if __name__ == '__main__':
  main()
