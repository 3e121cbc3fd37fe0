"""Reproduce Luo et al. 2025's multi-power law accuracy from their public loss curves.

  python -m experiments.reproduce_mpl [--data=data/multipower] [--out=runs/mpl_reproduction]
      [--bootstrap=0] [--seed=0]

For the 25M and 100M models (data/multipower, vendored from thu-yao-01-luo/MultiPowerLaw with
checksums in manifest.json, checked first), on their split (fit on cosine_24000, constant_24000
and wsdcon_9; predict the other six curves), prints side by side the mean test R², MAE, RMSE,
PredE and WorstE of:
- their README;
- their published parameters (src/config.py PARAMS) evaluated by our law on our reading of the
  CSVs (the LR linear between rows, a linear warmup from 0 assumed before the first row): passes
  when the MAE is within 5% of their README's;
- our refit of the multi-power law on the three curves (analysis.curve_study, the one engine):
  passes when R² ≥ 0.997 and the MAE ≤ 1.25× the published one;
- the annealing law (Tissue et al. 2024, λ = 0.999) fitted the same way: the baseline, no mark.
Writes OUT/mpl.json and OUT/test_curves_<size>.png. Exit status 1 when a check fails.
"""

import hashlib
import json
import pathlib
import sys

import numpy as np

from analysis import cli
from analysis import curve_json
from analysis import curve_metrics
from analysis import curve_plots
from analysis import curve_study
from analysis import curves
from analysis import errors
from analysis import outdir

DATA = pathlib.Path(__file__).resolve().parents[1] / 'data' / 'multipower'
SIZES = ('25M', '100M')
PUBLISHED_MAE_TOLERANCE = 0.05
REFIT_MIN_R2 = 0.997
REFIT_MAX_MAE_RATIO = 1.25
COLUMNS = ('r2', 'mae', 'rmse', 'pred_e', 'worst_e')


def _curve(data: pathlib.Path, manifest: dict, size: str, name: str) -> curves.Curve:
  rel = f'csv_{size[:-1]}/{name}.csv'
  path = data / rel
  digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else 'missing'
  if digest != manifest['files'].get(rel):
    raise errors.InputError(f'{path}: sha256 {digest[:12]}... is not the one manifest.json '
                            'records: restore the vendored file (data/multipower/README.md)')
  return curves.from_csv(path)


def _test_means(fitted: curve_study.FittedLaw, test: list[curves.Curve]) -> dict:
  return curve_metrics.mean([curve_metrics.scores(c.loss_P, curve_json.observed_law(fitted, c))
                             for c in test])


def reproduce(data: pathlib.Path, size: str, bootstrap: int, seed: int) -> dict:
  manifest = json.loads((data / 'manifest.json').read_text())
  fit = [_curve(data, manifest, size, n) for n in manifest['split']['fit']]
  test = [_curve(data, manifest, size, n) for n in manifest['split']['test']]
  published = curve_study.FittedLaw('multipower', dict(zip(
      manifest['params_order'], manifest['published_params'][size])))
  ours = curve_study.fit(fit, 'multipower', bootstrap=bootstrap, seed=seed)
  annealing = curve_study.fit(fit, 'annealing', bootstrap=0)
  readme = manifest['published_test_means'][size]
  rows = {'readme': readme, 'published_params': _test_means(published, test),
          'refit': _test_means(curve_study.fitted_law(ours), test),
          'annealing': _test_means(curve_study.fitted_law(annealing), test)}
  checks = {
      'published_params_mae_within_5pct':
          abs(rows['published_params']['mae'] / readme['mae'] - 1) <= PUBLISHED_MAE_TOLERANCE,
      'refit_r2': rows['refit']['r2'] >= REFIT_MIN_R2,
      'refit_mae': rows['refit']['mae'] <= REFIT_MAX_MAE_RATIO * readme['mae']}
  return {'size': size, 'rows': rows, 'checks': checks, 'refit': curve_json.fit_json(ours),
          'annealing': curve_json.fit_json(annealing), 'fitted': curve_study.fitted_law(ours),
          'test': test}


def _print(result: dict) -> None:
  print(f'\n{result["size"]}: mean over the 6 test curves')
  print(f'{"":34s}' + ''.join(f'{c:>10s}' for c in COLUMNS))
  labels = {'readme': 'their README', 'published_params': 'their PARAMS, our law and reading',
            'refit': 'our refit (multi-power)', 'annealing': 'annealing law (baseline)'}
  for key, label in labels.items():
    print(f'{label:34s}' + ''.join(f'{result["rows"][key][c]:10.5f}' for c in COLUMNS))
  for name, ok in result['checks'].items():
    print(f'  {name}: {"PASS" if ok else "FAIL"}')


def _figure(result: dict, out: pathlib.Path) -> None:
  fitted = result['fitted']
  series = []
  for c in result['test']:
    t = np.unique(np.linspace(c.step_P[0], c.steps, 400).round().astype(int))
    loss, band = fitted.predict(c.lr_T, t)
    series.append(curve_plots.Series(c.name, t, loss, band, c.step_P, c.loss_P,
                                     curve_json.observed_law(fitted, c)))
  curve_plots.curves_figure(series, out, f'test_curves_{result["size"]}',
                            f'{result["size"]}: our multi-power refit on the test curves')


def main(argv: list[str] | None = None) -> None:
  p = cli.Parser(prog='python -m experiments.reproduce_mpl', description=__doc__.split('\n')[0])
  p.add_argument('--data', default=str(DATA))
  p.add_argument('--out', default='runs/mpl_reproduction')
  p.add_argument('--bootstrap', type=int, default=0, help='resamples for the refit\'s intervals')
  p.add_argument('--seed', type=int, default=0)
  args = p.parse_args(argv)
  data, out = pathlib.Path(args.data), pathlib.Path(args.out)
  if not (data / 'manifest.json').is_file():
    raise errors.InputError(f'no manifest.json in {data}: pass --data=DIR with the vendored curves')
  outdir.check_out(out)
  results = [reproduce(data, size, args.bootstrap, args.seed) for size in SIZES]
  for r in results:
    _print(r)
  with outdir.Staged(out) as stage:
    for r in results:
      _figure(r, stage)
    outdir.write_json(stage / 'mpl.json', {r['size']: {k: r[k] for k in (
        'rows', 'checks', 'refit', 'annealing')} for r in results})
  if not all(all(r['checks'].values()) for r in results):
    sys.exit(1)


if __name__ == '__main__':
  cli.run(main)
