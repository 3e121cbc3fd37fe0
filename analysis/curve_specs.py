"""The loss-curve laws as specs of the fitting engine (the laws.Law protocol): each law's row
layout, its residual model and its grid of starts, on curves' observations
(analysis.curve_observations).

The row works in normalised LR units, η' = η/η_ref (η_ref the largest LR of the fitted curves),
so that one grid of starts suits a run at LR 3e-3 and one at 3e-4, and with the power laws'
scales centred (a = log A' − α·s̄, s̄ the mean log S1' of the observed steps; c = log C' − γ·ℓ̄,
ℓ̄ the drop-weighted mean log η' of the loss-drop terms), which decorrelates each scale from its
exponent for L-BFGS. `named` gives the parameters in the curves' own units (analysis.curve_laws):
- multi-power: [L0, a, α, d, c, log β, log γ] with A = A'·η_ref^α, B = e^d/(β·η_ref) and
  C = C'·η_ref^(γ−1). β and γ are positive, as in the paper's fits: curves that cannot identify
  the loss drop would otherwise send γ off to −1000 and C to infinity. d = log(B'·β) because
  B·G = B·(1 − (C·x + 1)^(−β)) tends to B·β·log(C·x + 1) as β → 0: along that ridge the data fix
  B·β, and as separate coordinates B and β drift until L-BFGS runs out of iterations;
- annealing: [L0, a, α, log C'(, log 1/(1−λ))] with A = A'·η_ref^α, C = C'/η_ref; λ is held at
  curve_laws.ANNEALING_LAMBDA unless fitted.

Starts: a grid over the nonlinear parameters (α, and β, γ, C for the multi-power law; λ when
fitted) where, at each grid point, the law is linear in L0, A and B (C): those three come from a
least-squares solve on the observations. The STARTS best grid points by the objective start the
engine's L-BFGS.
"""

import dataclasses
import functools
import itertools

import numpy as np
import pandas as pd
from scipy import sparse

from analysis import curve_laws
from analysis import curve_observations
from analysis import loss_drop
from analysis import multipower_residuals
from analysis import objective

STARTS = 16  # grid points handed to L-BFGS
GRID_ALPHA = (0.2, 0.4, 0.6, 0.9)
GRID_BETA = (0.3, 0.6, 1.0)
GRID_GAMMA = (0.3, 0.6, 0.9)
GRID_LOG_C = tuple(np.log([0.01, 0.1, 1.0]))  # C' in normalised units
GRID_LAMBDA = (0.99, 0.995, 0.999, 0.9995)
POSITIVE = 1e-12  # a least-squares A or B that comes out ≤ 0 starts here instead


def _least_squares_rows(obs: curve_observations.Observations, power_gxN: np.ndarray,
                        drop_gxN: np.ndarray) -> np.ndarray:
  """Per grid point g: (L0, log A', log B') solving loss ≈ L0 + A'·power − B'·drop in least
  squares (A', B' floored at POSITIVE)."""
  power, drop = obs.observe(power_gxN), obs.observe(drop_gxN)
  out = np.empty((len(power), 3))
  for g in range(len(power)):
    design = np.stack([np.ones_like(obs.loss_P), power[g], -drop[g]], 1)
    L0, A, B = np.linalg.lstsq(design, obs.loss_P, rcond=None)[0]
    out[g] = L0, np.log(max(A, POSITIVE)), np.log(max(B, POSITIVE))
  return out


def _check_table(obs: curve_observations.Observations, table: pd.DataFrame | None) -> None:
  """A law on curves holds its observations; the engine's table must be those, in order."""
  if table is not None and not np.array_equal(table['loss'].to_numpy(float), obs.loss_P):
    raise ValueError('the table is not these curves\' observations (Observations.table)')


def _best(residuals, logy_P: np.ndarray, rows_GxQ: np.ndarray) -> np.ndarray:
  prob = objective.Problem(residuals, logy_P[None], np.ones((1, len(logy_P))))
  f, _ = prob(rows_GxQ, np.arange(len(rows_GxQ)))
  f = np.where(np.isfinite(f), f, np.inf)
  return rows_GxQ[np.argsort(f)[:STARTS]]


@dataclasses.dataclass(frozen=True)
class MultiPower:
  """Luo et al.'s multi-power law on a set of observations (analysis.curve_laws.multipower)."""
  obs: curve_observations.Observations
  name = 'multipower'
  variables = ('curve', 'step')  # the table's columns: each observation's curve and step
  params = curve_laws.MULTIPOWER_PARAMS

  @property
  def n_params(self) -> int:
    return len(self.params)

  @functools.cached_property
  def _residuals(self) -> multipower_residuals.MultiPowerResiduals:
    """Every node's merged loss-drop terms in normalised units, log η' centred."""
    o = self.obs
    parts, offset = [], 0
    for i, c in enumerate(o.curves):
      t = o.t_N[o.curve_N == i]
      terms = loss_drop.drop_terms(c.lr_T, t)
      parts.append((terms.point_J + offset, terms.drop_J / o.lr_ref,
                    terms.log_lr_J - np.log(o.lr_ref), np.log(terms.area_J / o.lr_ref)))
      offset += len(t)
    node_J, drop_J, log_lr_J, log_area_J = (np.concatenate(p) for p in zip(*parts))
    sum_NxJ = sparse.csr_matrix((np.ones(len(node_J)), (node_J, np.arange(len(node_J)))),
                                shape=(len(o.t_N), len(node_J)))
    centre = float(np.average(log_lr_J, weights=np.abs(drop_J)))
    return multipower_residuals.MultiPowerResiduals(o, o.log_area_N, node_J, drop_J,
                                                    log_lr_J - centre, centre, log_area_J, sum_NxJ)

  def named(self, x_Q: np.ndarray) -> dict[str, np.ndarray]:
    x = np.asarray(x_Q, dtype=float)
    with np.errstate(over='ignore', divide='ignore'):  # a degenerate resample: inf, no warning
      return self._named(x)

  def _named(self, x: np.ndarray) -> dict[str, np.ndarray]:
    ref, s, l = self.obs.lr_ref, self.obs.log_area_centre, self._residuals.log_lr_centre
    beta, gamma = np.exp(x[..., 5]), np.exp(x[..., 6])
    return dict(L0=x[..., 0], A=np.exp(x[..., 1] + x[..., 2] * s) * ref**x[..., 2],
                alpha=x[..., 2], B=np.exp(x[..., 3]) / (beta * ref),
                C=np.exp(x[..., 4] + gamma * l) * ref**(gamma - 1), beta=beta, gamma=gamma)

  def row(self, p: dict) -> np.ndarray:
    ref, s, l = self.obs.lr_ref, self.obs.log_area_centre, self._residuals.log_lr_centre
    return np.array([p['L0'], np.log(p['A'] / ref**p['alpha']) - p['alpha'] * s, p['alpha'],
                     np.log(p['B'] * p['beta'] * ref),
                     np.log(p['C'] / ref**(p['gamma'] - 1)) - p['gamma'] * l, np.log(p['beta']),
                     np.log(p['gamma'])])

  def predict(self, p: dict, lr_T: np.ndarray, t_P: np.ndarray) -> np.ndarray:
    return curve_laws.multipower(lr_T, t_P, **p)

  def residuals(self, table: pd.DataFrame | None = None
                ) -> multipower_residuals.MultiPowerResiduals:
    """The residual model of the observations (`table`, when given, must be obs.table)."""
    _check_table(self.obs, table)
    return self._residuals

  def starts(self) -> np.ndarray:
    res = self.residuals()
    grid = np.array(list(itertools.product(GRID_ALPHA, GRID_BETA, GRID_GAMMA, GRID_LOG_C)))
    power = np.exp(-grid[:, :1] * res.log_area_N)
    z = grid[:, 3:4] - grid[:, 2:3] * res.log_lr_J + res.log_area_J
    g = -np.expm1(-grid[:, 1:2] * np.log1p(np.exp(np.minimum(z, 600.0))))
    drop = np.asarray(res.sum_NxJ @ (g * res.drop_J).T).T
    linear = _least_squares_rows(self.obs, power, drop)
    rows = np.column_stack([linear[:, 0], linear[:, 1], grid[:, 0],
                            linear[:, 2] + np.log(grid[:, 1]), grid[:, 3], np.log(grid[:, 1]),
                            np.log(grid[:, 2])])
    return _best(res, np.log(self.obs.loss_P), rows)


@dataclasses.dataclass(frozen=True)
class Annealing:
  """Tissue et al.'s annealing law (analysis.curve_laws.annealing); λ held unless fit_lambda."""
  obs: curve_observations.Observations
  fit_lambda: bool = False
  name = 'annealing'
  variables = ('curve', 'step')

  @property
  def params(self) -> tuple[str, ...]:
    return curve_laws.ANNEALING_PARAMS

  @property
  def n_params(self) -> int:
    return 4 + int(self.fit_lambda)

  def named(self, x_Q: np.ndarray) -> dict[str, np.ndarray]:
    x = np.asarray(x_Q, dtype=float)
    ref, s = self.obs.lr_ref, self.obs.log_area_centre
    lam = -np.expm1(-x[..., 4]) if self.fit_lambda else np.full(x.shape[:-1],
                                                                 curve_laws.ANNEALING_LAMBDA)
    return dict(L0=x[..., 0], A=np.exp(x[..., 1] + x[..., 2] * s) * ref**x[..., 2],
                alpha=x[..., 2], C=np.exp(x[..., 3]) / ref, lam=lam)

  def row(self, p: dict) -> np.ndarray:
    ref, s = self.obs.lr_ref, self.obs.log_area_centre
    head = [p['L0'], np.log(p['A'] / ref**p['alpha']) - p['alpha'] * s, p['alpha'],
            np.log(p['C'] * ref)]
    return np.array(head + ([-np.log1p(-p['lam'])] if self.fit_lambda else []))

  def predict(self, p: dict, lr_T: np.ndarray, t_P: np.ndarray) -> np.ndarray:
    return curve_laws.annealing(lr_T, t_P, **p)

  def _annealing_area_N(self, lam: float) -> np.ndarray:
    o = self.obs
    return o.per_node(lambda lr_T: curve_laws.annealing_area(lr_T, lam)) / o.lr_ref

  @functools.cached_property
  def _held_annealing_area_N(self) -> np.ndarray:
    return self._annealing_area_N(curve_laws.ANNEALING_LAMBDA)

  def log_predict(self, x_nxQ: np.ndarray) -> np.ndarray:
    lams = self.named(x_nxQ)['lam']
    s2_nxN = (np.stack([self._annealing_area_N(lam) for lam in lams]) if self.fit_lambda else
              self._held_annealing_area_N[None])
    L_nxN = (x_nxQ[:, :1] + np.exp(x_nxQ[:, 1:2] - x_nxQ[:, 2:3] * self.obs.log_area_N) -
             np.exp(x_nxQ[:, 3:4]) * s2_nxN)
    return np.log(self.obs.observe(L_nxN))

  def residuals(self, table: pd.DataFrame | None = None) -> objective.Numeric:
    _check_table(self.obs, table)
    return objective.Numeric(self.log_predict)

  def starts(self) -> np.ndarray:
    o = self.obs
    lams = GRID_LAMBDA if self.fit_lambda else (curve_laws.ANNEALING_LAMBDA,)
    grid = np.array(list(itertools.product(GRID_ALPHA, lams)))
    power = np.exp(-grid[:, :1] * self.obs.log_area_N)
    s2 = np.stack([self._annealing_area_N(lam) for lam in grid[:, 1]])
    linear = _least_squares_rows(o, power, s2)
    rows = np.column_stack([linear[:, 0], linear[:, 1], grid[:, 0], linear[:, 2]] +
                           ([-np.log1p(-grid[:, 1])] if self.fit_lambda else []))
    return _best(self.residuals(), np.log(o.loss_P), rows)
