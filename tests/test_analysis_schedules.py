"""analysis.schedules: the LR of every step, re-derived from config fields, against the schedule
scaling.optim trains with; the --schedule specs; the reconstruction from CSV rows."""

import json

import numpy as np
import pytest

from analysis import errors
from analysis import schedules
from configs import common
from scaling import optim


def _config(**fields):
  c = common.training_config()
  c.update(dict(lr=3e-3, steps=300, warmup_steps=20, min_lr_ratio=0.1, cooldown_fraction=0.2))
  c.update(fields)
  return c


CASES = [dict(schedule='constant'), dict(schedule='constant', warmup_steps=0),
         dict(schedule='cosine'), dict(schedule='cosine', min_lr_ratio=0.0),
         dict(schedule='cosine', warmup_steps=0, steps=77)] + [
             dict(schedule='wsd', cooldown_shape=shape, cooldown_fraction=fraction,
                  min_lr_ratio=floor)
             for shape in ('linear', 'sqrt', 'cosine') for fraction in (0.1, 0.4)
             for floor in (0.1, 0.0)]


@pytest.mark.parametrize('fields', CASES, ids=lambda f: '-'.join(map(str, f.values())))
def test_config_schedule_matches_scaling_optim(fields):
  c = _config(**fields)
  trained = np.asarray([float(optim.schedule(c)(s)) for s in range(c.steps)])  # update s, 0-based
  lr_T = schedules.from_config(c.to_dict())
  assert lr_T.shape == (c.steps + 1,) and lr_T[0] == 0.0
  # scaling.optim computes in float32: agree to its rounding, relative to the peak near 0
  np.testing.assert_allclose(lr_T[1:], trained, rtol=2e-6, atol=1e-6 * c.lr)


def test_spec_is_the_config_schedule_of_the_same_fields():
  spec = 'wsd:steps=300,peak=3e-3,final=3e-4,warmup=20,cooldown=0.4,shape=sqrt'
  c = _config(schedule='wsd', cooldown_fraction=0.4, cooldown_shape='sqrt')
  np.testing.assert_allclose(schedules.from_spec(spec), schedules.from_config(c.to_dict()),
                             rtol=1e-12)
  cosine = schedules.from_spec('cosine:steps=300,peak=3e-3,warmup=20')  # final: peak/10
  np.testing.assert_allclose(cosine, schedules.from_config(_config(schedule='cosine').to_dict()))


def test_spec_hand_values():
  # constant with 4 warmup steps: η_t = peak · min(1, t/4)
  np.testing.assert_allclose(schedules.from_spec('constant:steps=6,peak=2,warmup=4'),
                             [0, 0.5, 1, 1.5, 2, 2, 2])
  # two-stage: 1.0 until step 3, then 0.25 (no warmup)
  np.testing.assert_allclose(schedules.from_spec('twostage:steps=5,peak=1,final=0.25,switch=3'),
                             [0, 1, 1, 0.25, 0.25, 0.25])
  # exp cooldown over the last 2 of 4 steps, from 1 to 0.01: geometric in progress 0, 1/2, 1
  np.testing.assert_allclose(
      schedules.from_spec('wsd:steps=4,peak=1,final=0.01,cooldown=0.5,shape=exp'),
      [0, 1, 1, 1, 0.1])


def test_config_spec_reads_a_config_file_or_a_runs_config_json(tmp_path):
  lr_T = schedules.from_spec('config:configs/lm.py:size=nano')
  c = _config(lr=3e-3, steps=200, warmup_steps=20, schedule='cosine')
  np.testing.assert_allclose(lr_T, schedules.from_config(c.to_dict()))
  wsd = _config(schedule='wsd', cooldown_shape='sqrt')
  (tmp_path / 'config.json').write_text(json.dumps(wsd.to_dict()))
  np.testing.assert_allclose(schedules.from_spec(f'config:{tmp_path / "config.json"}'),
                             schedules.from_config(wsd.to_dict()))


@pytest.mark.parametrize('spec', [
    'cosine', 'linear:steps=10,peak=1', 'cosine:steps=10', 'cosine:steps=10,peak=1,final=2',
    'wsd:steps=10,peak=1,shape=square', 'wsd:steps=10,peak=1,cooldown=1.5',
    'wsd:steps=10,peak=1,final=0,shape=exp', 'constant:steps=ten,peak=1',
    'constant:steps=10,peak=1,warmup=11', 'constant:steps=10,peak=1,colour=red',
    'twostage:steps=10,peak=1,final=0.1', 'config:configs/no_such.py:size=nano',
    'config:configs/lm.py:size=huge'])
def test_bad_spec_is_one_input_error(spec):
  with pytest.raises(errors.InputError) as e:
    schedules.from_spec(spec)
  assert '\n' not in str(e.value)


def test_rows_interpolate_with_an_assumed_warmup():
  lr_T = schedules.from_rows([4, 6], [2.0, 1.0])
  np.testing.assert_allclose(lr_T, [0, 0.5, 1, 1.5, 2, 1.5, 1])
  np.testing.assert_allclose(schedules.from_rows([4, 6], [2.0, 1.0], warmup=False),
                             [0, 2, 2, 2, 2, 1.5, 1])
