"""Choose a schedule before spending the compute: given a fitted loss-curve law and a step budget,
the WSD cooldown (fraction and shape) with the lowest predicted final loss, and its predicted gain
over a cosine decay of the same length, peak and final LR.

The gain's interval is paired: each bootstrap resample's parameters predict both schedules, so
the uncertainty the two share (L0, A, α) cancels in their difference.
"""

import dataclasses

import numpy as np

from analysis import curve_study
from analysis import intervals
from analysis import schedules

FRACTIONS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)
SHAPES = ('linear', 'sqrt', 'cosine', 'exp')


@dataclasses.dataclass
class Choice:
  steps: int
  cosine: str  # the spec of the baseline
  table: list[dict]  # every candidate: spec, fraction, shape, final loss and its interval
  best: dict
  gain: float  # cosine's predicted final loss − the best's (> 0: the best is lower)
  gain_ci95: list[float] | None

  def to_json(self) -> dict:
    return dataclasses.asdict(self)


def _final(fitted: curve_study.FittedLaw, spec: str) -> tuple[float, np.ndarray | None]:
  lr_T = schedules.from_spec(spec)
  t = np.array([len(lr_T) - 1])
  loss, _ = fitted.predict(lr_T, t)
  samples = fitted.resampled(lr_T, t)[:, 0] if fitted.samples is not None else None
  return float(loss[0]), samples


def choose(fitted: curve_study.FittedLaw, steps: int, peak: float, final: float,
           warmup: int) -> Choice:
  common = f'steps={steps},peak={peak!r},final={final!r},warmup={warmup}'
  cosine_spec = f'cosine:{common}'
  cosine, cosine_samples = _final(fitted, cosine_spec)
  table, samples = [], []
  for shape in SHAPES:
    if shape == 'exp' and final == 0:
      continue  # a geometric decay cannot reach 0
    for fraction in FRACTIONS:
      spec = f'wsd:{common},cooldown={fraction},shape={shape}'
      loss, s = _final(fitted, spec)
      table.append({'spec': spec, 'fraction': fraction, 'shape': shape, 'final_loss': loss,
                    'final_loss_ci95': None if s is None else intervals.ci95(s)})
      samples.append(s)
  i = int(np.argmin([row['final_loss'] for row in table]))
  gain_samples = None if cosine_samples is None else cosine_samples - samples[i]
  return Choice(steps=steps, cosine=cosine_spec, table=table, best=table[i],
                gain=cosine - table[i]['final_loss'],
                gain_ci95=None if gain_samples is None else intervals.ci95(gain_samples))
