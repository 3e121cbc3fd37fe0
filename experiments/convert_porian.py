"""Convert Porian et al. 2024's IsoFLOP points into the CSVs vendored under data/porian/ (run once).

  python -m experiments.convert_porian --git-dir=PATH/resolving-scaling-law-discrepancies/.git
      [--commit=0dc60d9] [--out=data/porian]

Reads the repository's summary tables (data/summary_df*.pickle.xz, pandas frames with one row per
configuration) with a restricted unpickler that resolves only pandas and numpy reconstruction
names, so a pickle cannot run code. For each configuration it writes one CSV with a row per
IsoFLOP point (budget, N, D, C, loss: the points Porian et al. interpolated) and records in
manifest.json the paper's conventions for that configuration, its published exponent a with its
95% interval (their Table 1, as their paper_tables.results_table formats the stored fit results)
and the sha256 of every file.
"""

import hashlib
import io
import json
import lzma
import pathlib
import pickle
import subprocess
import warnings

import numpy as np
import pandas as pd

from analysis import cli
from analysis import errors

REPO = 'formll/resolving-scaling-law-discrepancies'
SOURCES = {'summary_df.pickle.xz': 'Table 1', 'summary_df_owt2.pickle.xz': 'Table 1',
           'summary_df_att.pickle.xz': 'attention FLOPs',
           'summary_df_kaplan_tuned_hparams.pickle.xz': 'Kaplan counting, tuned optimizer'}

# (hparams, warmup, decay, param_count, val) -> short name, the paper's label
CONFIGS = {
    ('base', 'long', 'kaplan', 'kaplan', 'train'): ('kaplan', 'Reproducing Kaplan et al.'),
    ('base', 'long', 'kaplan', 'standard', 'val'): ('last-layer', 'Counting last layer FLOPs'),
    ('base', 'short', 'kaplan', 'standard', 'val'): ('warmup', 'Correcting warmup'),
    ('base', 'short', 'chinchilla', 'standard', 'val'): ('cosine', 'Cosine decay'),
    ('tuned', 'short', 'const', 'standard', 'val'): ('tuned', 'Optimizer tuning (no decay)'),
    ('base', 'long', 'kaplan', 'attention', 'train'):
        ('attention-last-layer', 'Counting last layer and attention FLOPs'),
    ('base', 'short', 'kaplan', 'attention', 'train'):
        ('attention-warmup', 'Correcting warmup (attention FLOPs)'),
    ('base', 'short', 'chinchilla', 'attention', 'train'):
        ('attention-cosine', 'Cosine decay (attention FLOPs)'),
    ('tuned', 'short', 'const', 'attention', 'train'):
        ('attention-tuned', 'Optimizer tuning (no decay, attention FLOPs)'),
    ('tuned', 'long', 'const', 'kaplan', 'train'): ('kaplan-tuned', 'Kaplan counting, tuned'),
}
DATASETS = {'rw': 'RefinedWeb', 'owt2': 'OpenWebText2'}
# What N and the loss are in each counting (their configs.ISOFLOP_ARGS and data.process_big_df);
# in every one C = 6 N D with that N.
COUNTING = {
    'kaplan': ('non-embedding parameters without the output head (params_no_embed)',
               'train/loss_smoothed'),
    'standard': ('parameters including the output head (params = flops_per_token / 6)',
                 'val/loss'),
    'attention': ('effective parameters including attention FLOPs '
                  '(eff_params_att = flops_per_token_att / 6)', 'train/loss_smoothed'),
}
# Their bootstrap adds Gaussian noise to every loss (analysis.get_noise_for_loss with
# configs.RW_SEED_CONFIG / OWT2_SEED_CONFIG); every log loss in the data is below their lower
# threshold (3), so the noise is the constant noise_low.
SEED_NOISE = {'rw': 0.002, 'owt2': 0.01}

_ALLOWED_ROOTS = ('pandas', 'numpy')
_ALLOWED_BUILTINS = {'slice'}


class RestrictedUnpickler(pickle.Unpickler):
  """Resolves only pandas and numpy names (and builtins.slice, which pandas indexes use)."""

  def find_class(self, module: str, name: str):
    if module.split('.')[0] in _ALLOWED_ROOTS or (module == 'builtins'
                                                 and name in _ALLOWED_BUILTINS):
      return super().find_class(module, name)
    raise pickle.UnpicklingError(f'refused to load {module}.{name}: only pandas and numpy '
                                 'reconstruction names are allowed')


def restricted_load(data: bytes):
  with warnings.catch_warnings():  # old pickles name numpy.core, which numpy 2 renamed
    warnings.simplefilter('ignore', DeprecationWarning)
    return RestrictedUnpickler(io.BytesIO(data)).load()


def git_blob(git_dir: str, commit: str, path: str) -> bytes:
  done = subprocess.run(['git', '--git-dir', git_dir, 'show', f'{commit}:{path}'],
                        capture_output=True, check=False)
  if done.returncode:
    raise errors.InputError(f'cannot read {path} at {commit} from {git_dir}: '
                            f'{done.stderr.decode().strip()}')
  return done.stdout


def points(data: pd.DataFrame) -> pd.DataFrame:
  """One row per IsoFLOP point: the sizes, tokens and losses of each budget's profile."""
  rows = []
  for _, budget in data.iterrows():
    if not isinstance(budget['orig_n'], pd.Series):
      continue  # a budget with fewer than 3 runs: they recorded nothing
    for n, t, loss in zip(budget['orig_n'], budget['orig_t'], budget['orig_loss']):
      if np.isfinite(loss):
        rows.append({'budget': budget['flops'], 'N': n, 'D': t, 'C': budget['flops'],
                     'loss': loss})
  return pd.DataFrame(rows).sort_values(['budget', 'N']).reset_index(drop=True)


def published(fit_results: dict) -> dict:
  """a and its 95% interval as their Table 1 prints them (3 significant digits, 2 decimals)."""
  boot = [d['n_exponent'] for d in fit_results['bootstrap_weighted'] if 'n_coef' in d]
  lo, hi = np.quantile(boot, [0.025, 0.975])
  return {'a': float(f'{fit_results["bs_median_weighted"]["n_exponent"]:.3g}'),
          'ci95': [round(float(lo), 2), round(float(hi), 2)]}


def convert(git_dir: str, commit: str, out: pathlib.Path) -> dict:
  out.mkdir(parents=True, exist_ok=True)
  configs = {}
  for source, table in SOURCES.items():
    summary = restricted_load(lzma.decompress(git_blob(git_dir, commit, f'data/{source}')))
    for _, row in summary.iterrows():
      key = tuple(row[k] for k in ('hparams', 'warmup', 'decay', 'param_count', 'val'))
      short, label = CONFIGS[key]
      name = f'{row["dataset"]}-{short}'
      csv = out / f'{name}.csv'
      points(row['data']).to_csv(csv, index=False, float_format='%.17g')
      optima = row['optimal_pairs'].dropna(subset=['n'])
      configs[name] = {
          'file': csv.name, 'sha256': hashlib.sha256(csv.read_bytes()).hexdigest(),
          'dataset': DATASETS[row['dataset']], 'label': label, 'table': table,
          'paper_config': [row['dataset'], *key],
          'N': COUNTING[row['param_count']][0], 'C': '6ND with that N',
          'loss': COUNTING[row['param_count']][1],
          'seed_noise_nats': SEED_NOISE[row['dataset']],
          'published': published(row['fit_results']),
          'published_optima': {'C': optima['flops'].tolist(), 'N': optima['n'].tolist(),
                               'log_n_std': optima['n_star_std'].tolist()},
      }
  manifest = {'source': f'https://github.com/{REPO}', 'commit': _full_commit(git_dir, commit),
              'files': [f'data/{s}' for s in sorted(SOURCES)],
              'licence': 'MIT (LICENSE, copied unchanged)', 'configs': configs}
  (out / 'LICENSE').write_bytes(git_blob(git_dir, commit, 'LICENSE'))
  (out / 'manifest.json').write_text(json.dumps(manifest, indent=1) + '\n')
  return manifest


def _full_commit(git_dir: str, commit: str) -> str:
  return subprocess.run(['git', '--git-dir', git_dir, 'rev-parse', commit], capture_output=True,
                        check=True, text=True).stdout.strip()


def main(argv: list[str] | None = None) -> None:
  p = cli.Parser(prog='python -m experiments.convert_porian', description=__doc__.split('\n')[0])
  p.add_argument('--git-dir', required=True, help=f'a git mirror of {REPO}')
  p.add_argument('--commit', default='0dc60d9')
  p.add_argument('--out', default='data/porian')
  args = p.parse_args(argv)
  manifest = convert(args.git_dir, args.commit, pathlib.Path(args.out))
  print(f'wrote {len(manifest["configs"])} configurations to {args.out}')


if __name__ == '__main__':
  cli.run(main)
