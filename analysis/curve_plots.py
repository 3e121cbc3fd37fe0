"""Figures of loss curves against a fitted loss-curve law: the observations, the law with its 95%
band, and the residuals below; and a predicted schedule's curve with its LR."""

import dataclasses
import pathlib

import numpy as np
from matplotlib.figure import Figure

from analysis import figures


@dataclasses.dataclass
class Series:
  """One curve on a figure: observations (may be empty) and the law at steps t with its band."""
  name: str
  t: np.ndarray
  law: np.ndarray
  band: np.ndarray | None  # 2×len(t), or None
  step: np.ndarray  # observations
  loss: np.ndarray
  law_at_steps: np.ndarray  # the law at the observations, for the residuals


def curves_figure(series: list[Series], out_dir: str | pathlib.Path, name: str,
                  title: str) -> list[pathlib.Path]:
  fig = Figure(figsize=(7, 6), layout='constrained')
  top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
  for i, s in enumerate(series):
    color = f'C{i % 10}'
    if s.band is not None:
      top.fill_between(s.t, s.band[0], s.band[1], color=color, alpha=0.25, lw=0)
    top.plot(s.t, s.law, '-', color=color, lw=1, label=s.name)
    top.plot(s.step, s.loss, '.', color=color, ms=2.5)
    bottom.plot(s.step, s.loss - s.law_at_steps, '.', color=color, ms=2.5)
  top.set_ylabel('loss (dots: observed; lines: law, 95% band)')
  top.set_title(title, fontsize=9)
  top.legend(fontsize=7)
  low = min(np.percentile(s.loss, 1) for s in series if len(s.loss)) if any(
      len(s.loss) for s in series) else None
  if low is not None:  # the early steps' high loss would flatten the curves' differences
    top.set_ylim(low - 0.02 * abs(low), max(np.percentile(s.loss, 90) for s in series
                                            if len(s.loss)))
  bottom.axhline(0, color='k', lw=0.5)
  bottom.set_xlabel('step')
  bottom.set_ylabel('observed − law')
  return figures.save(fig, out_dir, name)


def schedule_figure(t: np.ndarray, loss: np.ndarray, band: np.ndarray | None, lr_T: np.ndarray,
                    out_dir: str | pathlib.Path, name: str, title: str) -> list[pathlib.Path]:
  fig = Figure(figsize=(7, 4.5), layout='constrained')
  ax = fig.add_subplot()
  if band is not None:
    ax.fill_between(t, band[0], band[1], color='C0', alpha=0.25, lw=0, label='95% band')
  ax.plot(t, loss, 'C0-', lw=1, label='predicted loss')
  ax.set_xlabel('step')
  ax.set_ylabel('loss')
  ax.set_ylim(np.min(loss) - 0.02 * abs(np.min(loss)), np.percentile(loss, 90))
  lr_axis = ax.twinx()
  lr_axis.plot(np.arange(len(lr_T)), lr_T, 'C1-', lw=0.8, label='learning rate')
  lr_axis.set_ylabel('learning rate')
  ax.set_title(title, fontsize=9)
  ax.legend(loc='upper right', fontsize=7)
  return figures.save(fig, out_dir, name)
