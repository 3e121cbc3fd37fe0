"""Reproduce Zhang et al. 2024's critical batch sizes (Chinchilla setting) from their numbers.

  python -m experiments.reproduce_critical_batch [--data=data/critical_batch]
      [--out=runs/critical_batch_reproduction] [--bootstrap=200] [--seed=0]

Reads the steps to target loss of their 5 models x 9 batch sizes, vendored under
data/critical_batch/ from their notebook (experiments/convert_critical_batch.py; checksum in
manifest.json), and fits them with the library (analysis.critical_batch): S = S_min (1 + B_crit/B)
by least squares in log S for each model, the critical batch under their definition (20% over
linear scaling from batch 256), then CBS = k N_M^β across models. Prints ours beside the published
values; each must agree within 1% (relative). Writes OUT/critical_batch.json and the figures
(steps_vs_batch, critical_batch). Exit status 1 when a value does not agree.
"""

import hashlib
import json
import pathlib
import sys

import pandas as pd

from analysis import cli
from analysis import critical_batch
from analysis import errors
from analysis import hparam_figures
from analysis import outdir

DATA = pathlib.Path(__file__).resolve().parents[1] / 'data' / 'critical_batch'
TOLERANCE = 0.01  # relative


def read(data: pathlib.Path) -> tuple[pd.DataFrame, dict]:
  """Their table as N (millions), batch (sequences), steps, after the manifest's checksum."""
  try:
    manifest = json.loads((data / 'manifest.json').read_text())
    found = hashlib.sha256((data / manifest['csv']).read_bytes()).hexdigest()
  except (OSError, json.JSONDecodeError, KeyError) as e:
    raise errors.InputError(f'{data} does not hold the vendored numbers ({e}): pass --data=DIR, '
                            'or rerun python -m experiments.convert_critical_batch') from e
  if found != manifest['sha256']:
    raise errors.InputError(f'{data / manifest["csv"]}: sha256 {found[:12]}... is not the '
                            f'manifest\'s {manifest["sha256"][:12]}...: restore the file')
  raw = pd.read_csv(data / manifest['csv'])
  return raw.rename(columns={'N_M': 'N', 'batch_size': 'batch'}), manifest


def compare(result: critical_batch.CriticalBatchFit, published: dict) -> list[dict]:
  """One row per published number: ours, theirs, the relative difference and the pass mark."""
  rows = [{'what': f'CBS {name} (sequences)', 'ours': float(ours), 'published': theirs}
          for (name, theirs), ours in zip(published['critical_batch'].items(),
                                          result.sizes['critical_batch'])]
  rows += [{'what': 'law coefficient k', 'ours': result.law.params['coefficient'],
            'published': published['law']['coefficient']},
           {'what': 'law exponent beta', 'ours': result.law.params['N'],
            'published': published['law']['exponent']}]
  for r in rows:
    r['rel_diff'] = r['ours'] / r['published'] - 1
    r['pass'] = bool(abs(r['rel_diff']) <= TOLERANCE)
  return rows


def main(argv: list[str] | None = None) -> None:
  p = cli.Parser(prog='python -m experiments.reproduce_critical_batch',
                 description=__doc__.split('\n')[0])
  p.add_argument('--data', default=str(DATA))
  p.add_argument('--out', default='runs/critical_batch_reproduction')
  p.add_argument('--bootstrap', type=int, default=200)
  p.add_argument('--seed', type=int, default=0)
  args = p.parse_args(argv)
  if args.bootstrap < 0:
    raise errors.InputError(f'--bootstrap must be >= 0, got {args.bootstrap}')
  out = pathlib.Path(args.out)
  outdir.check_out(out)
  table, manifest = read(pathlib.Path(args.data))
  pub = manifest['published']
  options = critical_batch.Options('zhang', pub['reference_batch'], pub['overhead'],
                                   args.bootstrap, args.seed)
  result = critical_batch.fit(table, options)
  rows = compare(result, pub)
  fit_json = critical_batch.to_json(result, f'sequences of {table["seq_len"].iloc[0]} tokens',
                                    None)
  with outdir.Staged(out) as stage:
    hparam_figures.critical_batch_figures(result, table, 'sequences', stage)
    outdir.write_json(stage / 'critical_batch.json', {**fit_json, 'comparison': rows,
                                                      'tolerance': TOLERANCE,
                                                      'source': manifest['source'],
                                                      'commit': manifest['commit']})
  print('\n'.join(critical_batch.lines(fit_json)))
  print(f'\n{"published value":<28}{"ours":>12}{"published":>12}{"diff":>10}')
  for r in rows:
    print(f'{r["what"]:<28}{r["ours"]:>12.6g}{r["published"]:>12.6g}{r["rel_diff"]:>+10.2e}'
          f'  {"pass" if r["pass"] else "FAIL"}')
  print(f'wrote {out}/critical_batch.json and figures')
  if not all(r['pass'] for r in rows):
    sys.exit(1)


if __name__ == '__main__':
  cli.run(main)
