"""The one interval rule (analysis/intervals.py) against numpy's percentiles, and its too-few rule."""

import numpy as np
import pytest

from analysis import intervals


def test_ci95_and_stderr_are_numpys_over_the_finite_samples():
  s = np.random.default_rng(0).normal(3.0, 0.5, 400)
  with_nan = np.concatenate([s, [np.nan, np.inf]])
  np.testing.assert_allclose(intervals.ci95(with_nan), np.percentile(s, [2.5, 97.5]), rtol=1e-15)
  assert intervals.stderr(with_nan) == pytest.approx(np.std(s, ddof=1), rel=1e-15)
  assert intervals.summarize({'x': s}) == ({'x': intervals.stderr(s)}, {'x': intervals.ci95(s)})


def test_fewer_than_two_finite_samples_give_no_interval():
  for s in ([], [1.0], [np.nan, 2.0, np.inf]):
    assert intervals.ci95(s) is None and intervals.stderr(s) is None
  assert intervals.ci95([1.0, 2.0]) == [1.025, 1.975]  # two are enough: linear interpolation
  assert intervals.band(np.ones((1, 5))) is None
  assert intervals.text([np.nan, 2.0]) == 'no interval (1 of 2 samples finite)'


def test_band_and_text():
  s_RxG = np.arange(200.0).reshape(100, 2)
  np.testing.assert_allclose(intervals.band(s_RxG), np.percentile(s_RxG, [2.5, 97.5], 0))
  assert intervals.text([1.0, 2.0, 3.0, np.nan]) == '[1.05, 2.95] (3/4 fits)'
