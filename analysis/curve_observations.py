"""Several loss curves' observations as one vector, as the loss-curve laws' specs fit them: the
law is evaluated at N nodes (the steps the curves' observations need) and averaged into the P
observations (a window mean for a train_loss row, the value itself otherwise; analysis.curves).
"""

import dataclasses
import functools

import numpy as np
import pandas as pd
from scipy import sparse

from analysis import curve_laws
from analysis import curves as curves_lib


@dataclasses.dataclass(frozen=True)
class Observations:
  """Curves' observations as one vector (P), the law at N nodes averaged into them by M."""
  curves: tuple[curves_lib.Curve, ...]
  lr_ref: float
  t_N: np.ndarray  # the step of each node in its curve
  curve_N: np.ndarray  # which curve each node belongs to
  average_PxN: sparse.csr_matrix
  loss_P: np.ndarray
  curve_P: np.ndarray  # which curve each observation belongs to

  @classmethod
  def of(cls, curves: list[curves_lib.Curve]) -> 'Observations':
    designs = [c.design() for c in curves]
    return cls(curves=tuple(curves), lr_ref=max(float(c.lr_T.max()) for c in curves),
               t_N=np.concatenate([t for t, _ in designs]),
               curve_N=np.concatenate([np.full(len(t), i) for i, (t, _) in enumerate(designs)]),
               average_PxN=sparse.block_diag([m for _, m in designs], format='csr'),
               loss_P=np.concatenate([c.loss_P for c in curves]),
               curve_P=np.concatenate([np.full(len(c.loss_P), i) for i, c in enumerate(curves)]))

  @functools.cached_property
  def log_area_N(self) -> np.ndarray:
    """log S1' at the nodes, centred: minus log_area_centre."""
    log_area = np.log(self.per_node(curve_laws.lr_area) / self.lr_ref)
    return log_area - log_area.mean()

  @property
  def log_area_centre(self) -> float:
    return float(np.log(self.per_node(curve_laws.lr_area) / self.lr_ref).mean())

  @property
  def table(self) -> pd.DataFrame:
    """The observations as the engine's table: curve, step and loss, in the residuals' order."""
    return pd.DataFrame({'curve': [self.curves[i].name for i in self.curve_P],
                         'step': np.concatenate([c.step_P for c in self.curves]),
                         'loss': self.loss_P})

  def per_node(self, of_lr) -> np.ndarray:
    """of_lr(lr_T) -> an array over a curve's steps 0..T; gathered at the nodes (N)."""
    return np.concatenate([np.asarray(of_lr(c.lr_T))[self.t_N[self.curve_N == i]]
                           for i, c in enumerate(self.curves)])

  def observe(self, values_nxN: np.ndarray) -> np.ndarray:
    """The law at the nodes -> at the observations: (n, N) -> (n, P)."""
    return np.asarray(self.average_PxN @ values_nxN.T).T
