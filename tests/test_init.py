"""Every parameter of both model families starts as its rule says, at every configured size.

The expected standard deviations are written out here from the shapes, independently of
`scaling.models.initialization`: a rule that is wrong in the table fails here too. A full model
of the larger sizes would take minutes to draw, so each size is checked on what defines it:
`jax.eval_shape` of the whole model gives every parameter's path and shape, and one real block
(with the size's true depth, which sets the residual scaling) plus the model without blocks
(embeddings, norms, heads) are drawn for real.
"""

import math
import pathlib

import jax
import numpy as np
import pytest
from flax import nnx

from configs import dit as dit_configs
from configs import lm as lm_configs
from scaling.models import dit as dit_model
from scaling.models import initialization
from scaling.models import transformer

MIN_ELEMENTS = 1 << 13  # pool seeds until the std is estimated to about 0.8% (1/sqrt(2n))
RTOL = 0.03


def lm_expected(m) -> dict[str, tuple[str, float]]:
  D, F, L = m.d_model, m.d_ff, m.n_layer
  residual = 1 / math.sqrt(2 * L)  # GPT-2: residual outputs shrink with depth
  table = {
      'embed': ('random', 0.02),
      'unembed': ('random', 0.02),
      'attn/wq': ('random', 1 / math.sqrt(D)),
      'attn/wk': ('random', 1 / math.sqrt(D)),
      'attn/wv': ('random', 1 / math.sqrt(D)),
      'attn/wo': ('random', residual / math.sqrt(D)),  # fan-in H*K = D
      'mlp/w_in': ('random', 1 / math.sqrt(D)),
      'mlp/w_gate': ('random', 1 / math.sqrt(D)),
      'mlp/w_out': ('random', residual / math.sqrt(F)),
  }
  for norm in ('attn_norm/scale', 'mlp_norm/scale', 'out_norm/scale'):
    table[norm] = ('ones', 1.0)
  return table


def xavier_std(fan_in: int, fan_out: int) -> float:
  return math.sqrt(2 / (fan_in + fan_out))


def dit_expected(m) -> dict[str, tuple[str, float]]:
  D, F, P, C = m.d_model, m.mlp_ratio * m.d_model, m.patch, m.channels
  table = {
      'w_patch': ('random', xavier_std(P * P * C, D)),
      'cond/w_t1': ('random', 0.02),
      'cond/w_t2': ('random', 0.02),
      'cond/classes': ('random', 0.02),
      'attn/w_qkv': ('random', xavier_std(D, 3 * D)),  # one (D, 3D) matrix, as in DiT
      'attn/w_o': ('random', xavier_std(D, D)),
      'mlp/w_in': ('random', xavier_std(D, F)),
      'mlp/w_out': ('random', xavier_std(F, D)),
  }
  zeros = ['b_patch', 'cond/b_t1', 'cond/b_t2', 'attn/b_qkv', 'attn/b_o', 'mlp/b_in',
           'mlp/b_out', 'modulation/w', 'modulation/b', 'final_modulation/w',
           'final_modulation/b', 'w_out', 'b_out']  # adaLN-Zero: every block starts as identity
  table.update({k: ('zeros', 0.0) for k in zeros})
  return table


def by_key(tree, vmapped: bool = False) -> dict[str, list]:
  out = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
    leaf = np.asarray(leaf) if vmapped else leaf
    out.setdefault(initialization.key(path), []).append(leaf)
  return out


def abstract_keys(make) -> dict[str, tuple[int, ...]]:
  state = nnx.eval_shape(lambda: nnx.to_pure_dict(nnx.state(make(nnx.Rngs(0)), nnx.Param)))
  return {k: v[0].shape for k, v in by_key(state).items()}


def pooled_draws(make_parts, expected: dict) -> dict[str, np.ndarray]:
  """key -> the elements of as many real draws as the smallest random tensor needs.

  The parts are built under jit and vmap over seeds: one compiled program, not one eager
  dispatch per parameter and seed.
  """
  def state(key):
    return [nnx.to_pure_dict(nnx.state(part, nnx.Param))
            for part in make_parts(nnx.Rngs(params=key))]
  # RBG keys: the same distributions as threefry's, at a fraction of its compile time.
  key = jax.random.key(0, impl='unsafe_rbg')
  shapes = by_key(jax.eval_shape(state, key))
  smallest = min(math.prod(v[0].shape) for k, v in shapes.items() if expected[k][0] == 'random')
  n_seeds = min(64, -(-MIN_ELEMENTS // smallest))
  drawn = jax.jit(jax.vmap(state))(jax.random.split(key, n_seeds))
  return {k: np.concatenate([a.ravel() for a in v]) for k, v in by_key(drawn, True).items()}


def check(expected: dict, shapes: dict, draws: dict, rules: dict) -> None:
  assert set(shapes) == set(draws), 'the real parts must cover every parameter of the model'
  assert set(shapes) <= set(expected), f'untested parameters: {set(shapes) - set(expected)}'
  for key, shape in shapes.items():
    kind, std = expected[key]
    x = draws[key]
    rule = rules[key]
    if kind == 'zeros':
      assert not x.any(), key
      assert rule.dist == 'zeros', key
    elif kind == 'ones':
      assert (x == 1).all(), key
      assert rule.dist == 'ones', key
    else:
      assert math.isclose(rule.stddev(shape), std, rel_tol=1e-12), (key, rule, shape)
      assert abs(x.std() / std - 1) < RTOL, f'{key}: std {x.std():.5g}, rule {std:.5g}'
      assert abs(x.mean()) < 5 * std / math.sqrt(x.size), key


@pytest.mark.parametrize('size', list(lm_configs.SIZES))
@pytest.mark.parametrize('mlp', ['gelu', 'swiglu'])
def test_lm_parameters_follow_their_rules(size, mlp):
  m = lm_configs.get_config(f'size={size}').model
  m.mlp = mlp
  if mlp == 'swiglu' and size not in ('nano', 'small'):
    pytest.skip('swiglu adds one matrix; two sizes cover it')
  headless = m.copy_and_resolve_references()
  headless.n_layer = 0  # embeddings, final norm and unembedding only: no depth dependence
  shapes = abstract_keys(lambda rngs: transformer.Transformer(m, rngs=rngs))
  expected = lm_expected(m)
  draws = pooled_draws(lambda rngs: [transformer.Block(m, dtype=np.float32, rngs=rngs),
                                     transformer.Transformer(headless, rngs=rngs)], expected)
  check(expected, shapes, draws, initialization.lm_rules(m))


@pytest.mark.parametrize('size', list(dit_configs.SIZES))
def test_dit_parameters_follow_their_rules(size):
  m = dit_configs.get_config(f'size={size}').model
  expected = dit_expected(m)
  block = pooled_draws(lambda rngs: [dit_model.Block(m, dtype=np.float32, rngs=rngs)], expected)
  for patch in dit_configs.PATCHES:  # the patch size changes the input and output layers only
    m = dit_configs.get_config(f'size={size}/{patch}').model
    headless = m.copy_and_resolve_references()
    headless.n_layer = 0
    expected = dit_expected(m)
    shapes = abstract_keys(lambda rngs: dit_model.DiT(m, rngs=rngs))
    draws = {**block, **pooled_draws(lambda rngs: [dit_model.DiT(headless, rngs=rngs)], expected)}
    check(expected, shapes, draws, initialization.dit_rules(m))


def test_docs_table_is_the_code():
  doc = (pathlib.Path(__file__).parents[1] / 'docs' / 'model.md').read_text()
  for table in (initialization.markdown(initialization.lm_rules(lm_configs.get_config().model)),
                initialization.markdown(initialization.dit_rules(dit_configs.get_config().model))):
    assert table in doc, 'docs/model.md is out of date: paste initialization.markdown() output'
