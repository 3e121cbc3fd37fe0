"""Loss curves across schedules, fitted jointly by the one engine and used to predict other
schedules' whole curves, each predicted point with a bootstrap interval.

  result = curve_study.fit([curve_a, curve_b, curve_c], law='multipower', bootstrap=200)
  loss_P, band_2xP = curve_study.fitted_law(result).predict(lr_T, t_P)  # any schedule

The fit is the engine's (engine.fit_law): the Huber objective on log residuals (δ = 1e-3, as Luo
et al.), summed over the observations of every curve; starts from the law's grid
(analysis.curve_specs), then the batched L-BFGS and polish. The bootstrap resamples blocks of
BLOCK consecutive observations within each curve (a curve's residuals are correlated over
neighbouring steps, and every curve keeps its share of the data, so a resample never loses the
one curve that decays), warm-started at the fit.
Intervals are the engine's 95% percentile rule (analysis.intervals) over the converged resamples.
"""

import dataclasses

import numpy as np

from analysis import curve_laws
from analysis import curve_observations
from analysis import curve_specs
from analysis import curves as curves_lib
from analysis import engine
from analysis import errors
from analysis import intervals
from analysis import loss_drop
from analysis import multipower_residuals

LAWS = ('multipower', 'annealing')
BLOCK = 4  # observations per bootstrap block


def check_identifiable(curves: list[curves_lib.Curve], law: str) -> None:
  """The decay terms (B, C, β, γ; the annealing law's C) are fitted only if some curve's LR falls
  after its warmup; one InputError line otherwise."""
  for c in curves:
    peak = int(np.argmax(c.lr_T))
    if (np.diff(c.lr_T[peak:]) < 0).any():
      return
  names = ', '.join(c.name for c in curves)
  raise errors.InputError(f'--law={law}: no curve\'s LR falls after its warmup ({names}), so the '
                          'loss drop of a decay is not identified; add a curve whose LR decays '
                          '(cosine, WSD, two-stage)')


def spec(law: str, curves: list[curves_lib.Curve], fit_lambda: bool = False):
  obs = curve_observations.Observations.of(curves)
  if law == 'multipower':
    return curve_specs.MultiPower(obs)
  return curve_specs.Annealing(obs, fit_lambda=fit_lambda)


def block_weights(obs: curve_observations.Observations, n_resamples: int, seed: int) -> np.ndarray:
  """R×P counts: each curve's blocks of BLOCK consecutive observations resampled within it."""
  label_P = np.concatenate([[f'{i}:{j // BLOCK}' for j in range(np.sum(obs.curve_P == i))]
                            for i in range(len(obs.curves))])
  out = np.zeros((n_resamples, len(label_P)))
  for i in range(len(obs.curves)):
    mine = obs.curve_P == i
    out[:, mine] = engine.cluster_weights(label_P[mine], n_resamples, seed + i)
  return out


@dataclasses.dataclass(frozen=True)
class FittedLaw:
  """What a prediction needs: the law, its parameters and the bootstrap's (None: no interval)."""
  law: str
  params: dict[str, float]
  samples: dict[str, np.ndarray] | None = None

  def _evaluate(self, p: dict, lr_T: np.ndarray, t_P: np.ndarray, terms) -> np.ndarray:
    if self.law == 'multipower':
      return curve_laws.multipower(lr_T, t_P, **p, terms=terms)
    return curve_laws.annealing(lr_T, t_P, **p)

  def predict(self, lr_T: np.ndarray, t_P: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The law at steps t_P of a schedule, and the 95% band over the resamples (2×P) or None."""
    terms = loss_drop.drop_terms(lr_T, t_P) if self.law == 'multipower' else None
    loss = self._evaluate(self.params, lr_T, t_P, terms)
    if self.samples is None:
      return loss, None
    resampled = self.resampled(lr_T, t_P, terms)
    # a resample at a degenerate end point (γ or C overflowing) predicts nothing: left out
    return loss, intervals.band(resampled[np.isfinite(resampled).all(1)])

  def resampled(self, lr_T: np.ndarray, t_P: np.ndarray, terms=None) -> np.ndarray:
    """R×P: the law under every resample's parameters, a block of rows at a time (their arrays
    then stay in cache: 200 resamples of a 546-point curve run 7x faster so)."""
    if self.law == 'multipower' and terms is None:
      terms = loss_drop.drop_terms(lr_T, t_P)
    n = len(self.samples['L0'])
    if self.law == 'annealing':  # one S2 per λ: a resample at a time
      return np.stack([self._evaluate({k: v[r] for k, v in self.samples.items()}, lr_T, t_P, None)
                       for r in range(n)])
    rows = multipower_residuals.ROWS
    return np.concatenate([self._evaluate({k: v[r:r + rows, None] for k, v in self.samples.items()},
                                          lr_T, t_P, terms) for r in range(0, n, rows)])


def fitted_law(result: engine.LawFit) -> FittedLaw:
  """What predictions need from a fit: its law's name, parameters and resampled parameters."""
  samples = result.samples
  return FittedLaw(result.law.name, result.params, None if samples is None else {
      k: np.asarray(v) for k, v in samples.items()})


def fit(curves: list[curves_lib.Curve], law: str = 'multipower', bootstrap: int = 200,
        seed: int = 0, fit_lambda: bool = False) -> engine.LawFit:
  """The law fitted to the curves' observations by the engine, with `bootstrap` block resamples."""
  check_identifiable(curves, law)
  spec_ = spec(law, curves, fit_lambda)
  weights = block_weights(spec_.obs, bootstrap, seed) if bootstrap else None
  result = engine.fit_law(spec_, spec_.obs.table, weights, seed=seed)
  if not all(np.isfinite(v) for v in result.params.values()):
    shown = ', '.join(f'{k}={v:.3g}' for k, v in result.params.items())
    raise errors.InputError(f'--law={law}: the fit ran off to a degenerate law ({shown}): these '
                            'curves do not identify it; add a curve whose LR decays differently '
                            '(cosine, two-stage) or more observations')
  return result
