"""Reproduce Porian et al. 2024's Table 1 (N_opt ∝ C^a for each cumulative fix) from their points.

  python -m experiments.reproduce_porian [--data=data/porian] [--out=runs/porian_reproduction]
      [--config=NAME,...] [--isoflop=akima|parabola] [--resampling=noise|points]
      [--bootstrap=1000] [--seed=0]

Reads the IsoFLOP points vendored under data/porian/ (converted from their repository by
experiments/convert_porian.py; checksums in manifest.json), locates each budget's optimum with the
chosen estimator (default: Akima interpolation, as the paper), fits the power law across budgets
weighted by each optimum's bootstrap precision and prints every Table 1 row beside the published
value. A row passes when our a is within 0.02 of the published a or inside the published 95%
interval. The other configurations of their summary tables are reported without a pass mark.
Writes OUT/porian.json and the Figure 1 counterpart, OUT/figure1.png. Exit status 1 when a row
fails.
"""

import hashlib
import json
import pathlib
import sys

import pandas as pd

from analysis import approach2
from analysis import cli
from analysis import errors
from analysis import figures
from analysis import isoflop
from analysis import outdir

DATA = pathlib.Path(__file__).resolve().parents[1] / 'data' / 'porian'
TOLERANCE = 0.02
FIGURE1 = ('kaplan', 'tuned')  # the Kaplan reproduction and the final configuration


def manifest(data: pathlib.Path) -> dict:
  path = data / 'manifest.json'
  if not path.is_file():
    raise errors.InputError(f'no manifest.json in {data}: pass --data=DIR with the converted '
                            'Porian et al. points (python -m experiments.convert_porian)')
  return json.loads(path.read_text())


def load(data: pathlib.Path, name: str, entry: dict) -> pd.DataFrame:
  """One configuration's points, after checking the file against its manifest checksum."""
  csv = data / entry['file']
  digest = hashlib.sha256(csv.read_bytes()).hexdigest() if csv.is_file() else 'missing'
  if digest != entry['sha256']:
    raise errors.InputError(f'{csv}: sha256 {digest[:12]}... does not match manifest.json '
                            f'({entry["sha256"][:12]}...) for {name}: restore the file or rerun '
                            'python -m experiments.convert_porian')
  return pd.read_csv(csv)


def passes(a: float, published: dict) -> bool:
  lo, hi = published['ci95']
  return abs(a - published['a']) <= TOLERANCE or lo <= a <= hi


def _selected(configs: dict, spec: str | None) -> list[str]:
  if not spec:
    return list(configs)
  names = [s.strip() for s in spec.split(',') if s.strip()]
  unknown = [n for n in names if n not in configs]
  if unknown:
    raise errors.InputError(f'unknown configuration {", ".join(map(repr, unknown))}: use one of '
                            f'{", ".join(configs)}')
  return names


def report(rows: list[dict]) -> bool:
  """Prints Table 1 with pass marks and the other configurations; True when every row passes."""
  ok = True
  head = f'{"configuration":<46}{"dataset":<14}{"ours a [95% CI]":<26}{"published a (CI)":<22}'
  for table in ('Table 1', 'other'):
    shown = [r for r in rows if (r['table'] == 'Table 1') == (table == 'Table 1')]
    if not shown:
      continue
    print(f'\n{"Porian et al. Table 1" if table == "Table 1" else "Other configurations"}')
    print(head + ('pass' if table == 'Table 1' else ''))
    for r in shown:
      lo, hi = r['a_ci95']
      pub = r['published']
      mark = ''
      if table == 'Table 1':
        mark = 'PASS' if r['pass'] else 'FAIL'
        ok &= r['pass']
      print(f'{r["label"]:<46}{r["dataset"]:<14}{r["a"]:.3f} [{lo:.3f}, {hi:.3f}]'
            f'{"":<7}{pub["a"]:.3f} ({pub["ci95"][0]:.2f}, {pub["ci95"][1]:.2f}){"":<5}{mark}')
      for w in r['warnings']:
        print(f'    {w}')
  return ok


def main(argv: list[str] | None = None) -> None:
  p = cli.Parser(prog='python -m experiments.reproduce_porian', description=__doc__.split('\n')[0])
  p.add_argument('--data', default=str(DATA))
  p.add_argument('--out', default='runs/porian_reproduction')
  p.add_argument('--config', help='comma-separated configuration names (default: all)')
  p.add_argument('--isoflop', choices=isoflop.ESTIMATORS, default=isoflop.ESTIMATORS[0])
  p.add_argument('--resampling', choices=('noise', 'points'), default='noise',
                 help="noise: their seed-noise model (each dataset's sigma in manifest.json); "
                      'points: resample each budget\'s points')
  p.add_argument('--bootstrap', type=int, default=1000)
  p.add_argument('--seed', type=int, default=0)
  args = p.parse_args(argv)
  data = pathlib.Path(args.data)
  configs = manifest(data)['configs']
  names = _selected(configs, args.config)
  tables = {name: load(data, name, configs[name]) for name in names}  # all checked before fitting
  rows, results = [], {}
  for name in names:
    entry = configs[name]
    noise = entry['seed_noise_nats'] if args.resampling == 'noise' else None
    r = approach2.approach2(tables[name], args.isoflop, args.bootstrap, args.seed, noise)
    results[name] = r
    rows.append({'name': name, 'label': entry['label'], 'dataset': entry['dataset'],
                 'table': entry['table'], 'N': entry['N'], 'C': entry['C'], 'loss': entry['loss'],
                 **r.to_json(), 'published': entry['published'],
                 'pass': passes(r.a, entry['published'])})
  ok = report(rows)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  fig1 = {f'{configs[n]["dataset"]}, {configs[n]["label"]}': results[n] for n in names
          if n.split('-', 1)[1] in FIGURE1}
  if fig1:
    figures.optima_vs_compute(fig1, out, name='figure1')
  outdir.write_json(out / 'porian.json', {'tolerance': TOLERANCE, 'configurations': rows})
  print(f'\nwrote {out}/porian.json' + (' and figure1.png' if fig1 else ''))
  if not ok:
    sys.exit(1)


if __name__ == '__main__':
  cli.run(main)
