"""Speed of the loss-curve laws (analysis.curve_laws) and of their fit and prediction.

  python -m benchmarks.curve_speed [--bootstrap=200] [--blas-threads=1]

Times, in wall and CPU seconds (CPU time is what other jobs on a shared machine cannot inflate):
1. the multi-power law on Luo et al.'s 72,000-step cosine schedule (data/multipower/csv_25): at its
   546 logged steps, and at every one of its 72,000 steps;
2. the fit of 3 synthetic curves of 200 points (constant, cosine and two-stage schedules of 6000
   steps drawn from a known multi-power law with 0.3% noise): the grid and L-BFGS fit alone, then
   with --bootstrap resamples;
3. a prediction: the fitted law and its 95% band over the resamples at the 546 steps of the
   72,000-step curve.
Goals (issue 25): the 72,000-step curve under 1 s on one core; the fit of 3 curves of 200 points
under 60 s on 2 cores; a prediction under 1 s. Exits 1 when a goal's CPU time is exceeded.
"""

import pathlib
import sys
import time

import numpy as np
import threadpoolctl

from analysis import cli
from analysis import curve_laws
from analysis import curve_study
from analysis import curves
from analysis import schedules

DATA = pathlib.Path(__file__).resolve().parents[1] / 'data' / 'multipower'
TRUTH = dict(L0=1.5, A=0.5, alpha=0.4, B=40.0, C=2.0, beta=0.6, gamma=0.6)
SPECS = ('constant:steps=6000,peak=3e-3,warmup=20',
         'cosine:steps=6000,peak=3e-3,final=3e-4,warmup=20',
         'twostage:steps=6000,peak=3e-3,final=3e-4,warmup=20,switch=3000')
GOALS_S = {'law_72000_every_step': 1.0, 'fit_with_bootstrap': 60.0, 'predict': 1.0}


def _clocks() -> np.ndarray:
  return np.array([time.perf_counter(), time.process_time()])


def _timed(fn):
  t0 = _clocks()
  value = fn()
  return _clocks() - t0, value


def synthetic_curves(points: int = 200, sigma: float = 0.003, seed: int = 0) -> list[curves.Curve]:
  rng = np.random.default_rng(seed)
  out = []
  for i, spec in enumerate(SPECS):
    lr_T = schedules.from_spec(spec)
    step = np.linspace(len(lr_T) - 1, 1, points, endpoint=False)[::-1].round().astype(int)
    loss = curve_laws.multipower(lr_T, step, **TRUTH) * np.exp(sigma * rng.standard_normal(points))
    out.append(curves.Curve(name=spec.split(':')[0], lr_T=lr_T, step_P=step, loss_P=loss,
                            first_P=step, last_P=step))
  return out


def main(argv: list[str] | None = None) -> None:
  p = cli.Parser(prog='python -m benchmarks.curve_speed', description=__doc__.split('\n')[0])
  p.add_argument('--bootstrap', type=int, default=200)
  p.add_argument('--blas-threads', type=int, default=1)
  args = p.parse_args(argv)
  with threadpoolctl.threadpool_limits(args.blas_threads):
    long = curves.from_csv(DATA / 'csv_25' / 'cosine_72000.csv')
    every = np.arange(1, long.steps + 1)
    t = {'law_72000_logged': _timed(lambda: curve_laws.multipower(
        long.lr_T, long.step_P, **TRUTH))[0],
         'law_72000_every_step': _timed(lambda: curve_laws.multipower(
             long.lr_T, every, **TRUTH))[0]}
    synthetic = synthetic_curves()
    t['fit'], _ = _timed(lambda: curve_study.fit(synthetic, bootstrap=0))
    t['fit_with_bootstrap'], result = _timed(lambda: curve_study.fit(synthetic,
                                                                      bootstrap=args.bootstrap))
    fitted = curve_study.fitted_law(result)
    t['predict'], _ = _timed(lambda: fitted.predict(long.lr_T, long.step_P))
  print(f'{"what":28s}{"wall s":>10s}{"CPU s":>10s}{"goal s":>10s}')
  failed = False
  for name, (wall, cpu) in t.items():
    goal = GOALS_S.get(name)
    failed |= goal is not None and cpu > goal
    print(f'{name:28s}{wall:10.2f}{cpu:10.2f}{goal if goal else "":>10}')
  print(f'(fit: 3 curves x 200 points; bootstrap: {args.bootstrap} resamples, '
        f'{int(result.boot.converged_R.sum()) if result.boot else 0} converged)')
  if failed:
    sys.exit(1)


if __name__ == '__main__':
  cli.run(main)
