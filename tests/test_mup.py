"""μP (docs/mup.md): the coordinate check on both families, the per-parameter column of the init
table, the optimizer's multipliers, mup at base width == sp, and the bad-input lines."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import common
from configs import dit as dit_configs
from configs import lm as lm_configs
from experiments import mup_coord_check
from scaling import checks, optim, sharding, steps
from scaling.errors import ConfigError
from scaling.models import initialization
from scaling.tasks import TASKS

# Small enough for CI on 2 loaded cores; the script's default is 64..512.
CI_WIDTHS = (64, 128, 256)


@pytest.fixture(scope='module', params=['lm', 'dit'])
def coord(request):
  result = mup_coord_check.coord_check(request.param, CI_WIDTHS, n_steps=3)
  print({p: {k: round(v, 3) for k, v in result[p]['slope'].items()} for p in ('sp', 'mup')})
  return result


def test_mup_activations_do_not_grow_with_width(coord):
  for layer, s in coord['mup']['slope'].items():
    assert abs(s) <= 0.1, f'{coord["task"]} mup {layer}: slope {s:+.3f}; {coord["mup"]["rms"]}'


def test_sp_output_grows_with_width(coord):
  # Measured at 64..256 after 3 steps: sp +0.80 (LM logits), +0.19 (DiT output); mup -0.02, -0.04.
  out = 'logits' if coord['task'] == 'lm' else 'output'
  sp, mup = coord['sp']['slope'][out], coord['mup']['slope'][out]
  assert sp > 0.15 and sp - mup > 0.15, (coord['sp']['slope'], coord['mup']['slope'])


def test_slope_is_the_log_log_fit():
  assert mup_coord_check.slope([64, 128, 256], [1.0, 2.0, 4.0]) == pytest.approx(1.0)
  assert mup_coord_check.slope([64, 256], [3.0, 1.5]) == pytest.approx(-0.5)


def mup_model(family: str, width: int, base: int):
  c = lm_configs.get_config('size=nano') if family == 'lm' else dit_configs.get_config()
  c.parameterization, c.base_width, c.model.d_model = 'mup', base, width
  return c


def test_lr_multipliers_and_inits_follow_the_table():
  # Written out from Tensor Programs V's Adam table: hidden matrices base/width, the rest 1.
  m = mup_model('lm', 256, 64).model
  lr = initialization.lr_multiplier('lm', m)
  for path in ('blocks/0/attn/wq', 'blocks/1/attn/wo', 'blocks/0/mlp/w_in', 'blocks/1/mlp/w_out'):
    assert lr(path) == 0.25, path
  for path in ('embed', 'unembed', 'blocks/0/attn_norm/scale', 'out_norm/scale'):
    assert lr(path) == 1.0, path
  assert initialization.output_multiplier(m) == 0.25
  assert initialization.attention_scale(m, 128) == pytest.approx(math.sqrt(64 / 2) / 128)

  m = mup_model('diffusion', 192, 48).model
  lr = initialization.lr_multiplier('diffusion', m)
  for path in ('blocks/0/attn/w_qkv', 'blocks/0/modulation/w', 'final_modulation/w',
               'cond/w_t2'):
    assert lr(path) == 0.25, path
  for path in ('w_patch', 'w_out', 'cond/w_t1', 'cond/classes', 'blocks/0/modulation/b', 'b_out'):
    assert lr(path) == 1.0, path
  rules = initialization.dit_rules(m)
  ppc = m.patch**2 * m.channels
  assert rules['w_patch'].stddev((ppc, 192)) == pytest.approx(math.sqrt(2 / (ppc + 48)))
  assert rules['cond/w_t2'].stddev((192, 192)) == pytest.approx(0.02 * 0.5)
  assert rules['attn/w_qkv'].stddev((192, 3 * 192)) == pytest.approx(math.sqrt(2 / (4 * 192)))
  assert initialization.lr_multiplier('lm', lm_configs.get_config().model) is None  # sp


def test_optimizer_scales_the_whole_adamw_step():
  c = common.training_config()
  c.update(dict(lr=0.1, steps=10, warmup_steps=0, schedule='constant', weight_decay=0.5))
  params = {'w': jnp.full((2, 2), 2.0), 'scale': jnp.ones(2)}
  grads = {'w': jnp.array([[1.0, -2.0], [0.5, 0.0]]), 'scale': jnp.array([1.0, -1.0])}
  mult = lambda path: 0.25 if initialization.key(path) == 'w' else 1.0
  plain, scaled = optim.make(c), optim.make(c, mult)
  u0, _ = plain.update(grads, plain.init(params), params)
  u1, _ = scaled.update(grads, scaled.init(params), params)
  # Adam's first step is lr·sign(g) (bias-corrected); decay lr·wd·p; times 0.25 in total.
  expected_w = -0.1 * (np.sign(grads['w']) + 0.5 * 2.0) * 0.25
  np.testing.assert_allclose(u1['w'], expected_w, rtol=1e-5, atol=1e-7)  # Adam's eps
  np.testing.assert_allclose(u1['w'], 0.25 * u0['w'], rtol=1e-6)
  np.testing.assert_array_equal(u1['scale'], u0['scale'])


def first_losses(c, family: str, n: int = 3) -> list[float]:
  c.update(dict(batch_size=4, steps=n, warmup_steps=1, seed=0))
  mesh = sharding.make_mesh(c.mesh)
  fns = steps.build(c, TASKS[family], mesh)
  data = TASKS[family].make_data(c, 0, 1)
  state, losses = fns.init(), []
  for step in range(n):
    state, metrics = fns.train_step(state, sharding.global_batch(data.train_batch(step), mesh),
                                    step)
    losses.append(float(metrics['train_loss']))
  return losses


@pytest.mark.parametrize('family', ['lm', 'diffusion'])
def test_mup_at_base_width_is_sp(family):
  # Every μP constant is chosen to be 1 at width == base_width; only the attention scale is
  # written differently (x·√K/K, not x/√K), a float32 rounding apart.
  make = (lambda: lm_configs.get_config('size=nano')) if family == 'lm' else dit_configs.get_config
  sp, mup = make(), make()
  mup.parameterization, mup.base_width = 'mup', mup.model.d_model
  if family == 'lm':
    sp.seq_len = mup.seq_len = 32
  np.testing.assert_allclose(first_losses(mup, family), first_losses(sp, family), rtol=2e-6)


@pytest.mark.parametrize('overrides,field', [
    (dict(parameterization='mu-p'), 'parameterization'),
    (dict(parameterization='mup', base_width=0), 'base_width'),
    (dict(parameterization='mup', base_width=24), 'base_width'),  # 24 does not divide 32
    (dict(parameterization='mup', base_width=1), 'base_width'),  # not a multiple of n_head
])
def test_bad_parameterization_is_one_line(overrides, field):
  c = lm_configs.get_config('size=nano')
  c.update(overrides)
  with pytest.raises(ConfigError) as e:
    checks.check_fields(c)
  message = str(e.value)
  assert message.startswith(f'{field}: ') and '\n' not in message and '; ' in message, message


def test_a_ladder_takes_one_transferred_lr():
  from configs import ladder  # pylint: disable=import-outside-toplevel
  from experiments import runspec  # pylint: disable=import-outside-toplevel
  runs = ladder.isoflop_runs(ladder.CPU_LM, [3e10], ladder.CPU_LM_SHAPES, 7,
                             {**ladder.CPU_LM_TRAINING, **ladder.mup(3e-3, 4)})
  for run in runs:
    c = runspec.load_config(run['config'])
    runspec.apply_overrides(c, run['overrides'])
    checks.check_fields(c, schedule=False)
    assert (c.model.parameterization, c.model.base_width, c.lr) == ('mup', 4, 3e-3)
    m = initialization.lr_multiplier('lm', c.model)
    assert m('blocks/0/attn/wq') == 4 / c.model.d_model


def test_the_transfer_sweep_narrows_to_one_parameterization_and_a_few_rates():
  from configs.sweeps import mup_lr_transfer  # pylint: disable=import-outside-toplevel
  assert len(mup_lr_transfer.get_sweep('task=dit')['runs']) == 2 * 3 * 9
  runs = mup_lr_transfer.get_sweep('task=dit,steps=1200,only=mup,lowest=-8,highest=-4')['runs']
  assert {r['overrides']['parameterization'] for r in runs} == {'mup'}
  assert sorted({r['overrides']['lr'] for r in runs}) == [2.0**k for k in range(-8, -3)]
  assert {r['overrides']['steps'] for r in runs} == {1200} and len(runs) == 3 * 5
  with pytest.raises(ValueError, match='^lowest: 0 is above highest=-1'):
    mup_lr_transfer.get_sweep('lowest=0,highest=-1')
  with pytest.raises(ValueError, match='^only: unknown'):
    mup_lr_transfer.get_sweep('only=ntk')
