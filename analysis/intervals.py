"""95% percentile intervals and standard errors over bootstrap samples: the one rule for both.

Samples that are not finite (a resample whose quantity does not exist, such as a minimum it could
not bracket) are dropped first. With fewer than MIN_SAMPLES finite samples left there is no
interval and no standard error: the helpers return None, fit.json writes null and printed tables
say so. Every interval in analysis/ comes from here.
"""

import numpy as np

LEVELS = (2.5, 97.5)
MIN_SAMPLES = 2


def enough(n_samples: int) -> bool:
  return int(n_samples) >= MIN_SAMPLES


def finite(samples) -> np.ndarray:
  s = np.asarray(samples, float).ravel()
  return s[np.isfinite(s)]


def ci95(samples) -> list[float] | None:
  """[low, high]: the 2.5th and 97.5th percentiles of the finite samples, or None."""
  s = finite(samples)
  return [float(v) for v in np.percentile(s, LEVELS)] if enough(len(s)) else None


def stderr(samples) -> float | None:
  """The finite samples' standard deviation (ddof 1), or None."""
  s = finite(samples)
  return float(np.std(s, ddof=1)) if enough(len(s)) else None


def summarize(samples: dict[str, np.ndarray]) -> tuple[dict, dict]:
  """fit.json's `stderr` and `ci95` of each named quantity."""
  return {k: stderr(v) for k, v in samples.items()}, {k: ci95(v) for k, v in samples.items()}


def band(samples_RxG: np.ndarray) -> np.ndarray | None:
  """2×G: the interval at every grid point of a curve drawn over R samples (a figure's band)."""
  s = np.asarray(samples_RxG, float)
  return np.percentile(s, LEVELS, 0) if enough(len(s)) else None


def text(samples, digits: int = 4) -> str:
  """'[low, high]', with '(k/n fits)' when some samples were dropped, for printed tables."""
  s, n = finite(samples), np.asarray(samples).size
  if not enough(len(s)):
    return f'no interval ({len(s)} of {n} samples finite)'
  lo, hi = np.percentile(s, LEVELS)
  return f'[{lo:.{digits}g}, {hi:.{digits}g}]' + (f' ({len(s)}/{n} fits)' if len(s) < n else '')
