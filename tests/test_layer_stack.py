"""model.scan_layers: the blocks stacked under one lax.scan train as the unrolled blocks do, and
the compiled step stops growing with depth (scaling/models/layer_stack.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

from configs import dit, lm
from scaling import sharding, steps
from scaling.data import synthetic
from scaling.tasks import TASKS
from test_precision import ten_losses


def config(task: str, parameterization: str = 'sp'):
  c = lm.get_config('size=nano') if task == 'lm' else dit.get_config('size=tiny')
  c.update(dict(batch_size=8, steps=10, warmup_steps=2, lr=3e-3, parameterization=parameterization))
  c.base_width = c.model.d_model // 2  # mup away from its base width
  if task == 'lm':
    c.seq_len = 32
  c.model.n_layer = 3
  return c


def unrolled_params(c) -> dict:
  c = c.copy_and_resolve_references()
  c.model.scan_layers = False
  return jax.device_get(steps.build(c, TASKS[c.task], sharding.make_mesh(c.mesh)).init()['params'])


def stack(params: dict) -> dict:
  """Per-layer parameters ('blocks': {0: ..., 1: ...}, at any depth) -> a leading layer axis."""
  if 'blocks' in params:
    layers = [params['blocks'][i] for i in range(len(params['blocks']))]
    return {**params, 'blocks': jax.tree.map(lambda *x: np.stack(x), *layers)}
  return {k: stack(v) if isinstance(v, dict) else v for k, v in params.items()}


@pytest.mark.parametrize('task, parameterization', [('lm', 'mup'), ('diffusion', 'sp')])
def test_scanned_layers_train_as_the_unrolled_ones_over_ten_steps(task, parameterization):
  c = config(task, parameterization)
  params = unrolled_params(c)
  unrolled = ten_losses(c, params)
  c.model.scan_layers = True
  scanned = ten_losses(c, stack(params))
  assert len(set(unrolled)) == 10  # the parameters moved at every step
  np.testing.assert_allclose(scanned, unrolled, rtol=1e-5)


@pytest.mark.parametrize('task', ['lm', 'diffusion'])
def test_stacked_parameters_carry_an_unsharded_layer_axis(task):
  c = config(task)
  c.model.scan_layers = True
  model = nnx.eval_shape(lambda: TASKS[c.task].make_model(c, nnx.Rngs(0)))
  specs = nnx.to_pure_dict(nnx.get_partition_spec(nnx.state(model)))
  flat = jax.tree_util.tree_flatten_with_path(specs, is_leaf=lambda x: isinstance(x, P))[0]
  blocks = {jax.tree_util.keystr(k): v for k, v in flat
            if any(getattr(p, 'key', None) == 'blocks' for p in k)}
  assert blocks and all(spec[0] == 'layers' for spec in blocks.values())
  shapes = jax.tree_util.tree_flatten_with_path(nnx.to_pure_dict(nnx.state(model)))[0]
  assert {leaf.shape[0] for k, leaf in shapes if jax.tree_util.keystr(k) in blocks} == {3}
  attn, expected = {'lm': ("['blocks']['attn']['wq']", P(None, 'fsdp', 'tensor', None)),
                    'diffusion': ("['net']['blocks']['attn']['w_qkv']",
                                  P(None, 'fsdp', None, 'tensor', None))}[task]
  assert sharding.mesh_spec(blocks[attn]) == expected


def compiled_step(c):
  fns = steps.build(c, TASKS[c.task], sharding.make_mesh(c.mesh))
  batch = synthetic.batch(c, np.random.default_rng(0))
  return fns.train_step.lower(fns.abstract_state, batch, 0).compile()


@pytest.mark.parametrize('scan', [False, True])
def test_the_compiled_step_grows_with_depth_only_when_unrolled(scan):
  """Lines of the optimised HLO of the whole step (forward, backward, AdamW) at 2 and 6 layers:
  compile time follows them (docs/performance.md times it)."""
  sizes = []
  for n_layer in (2, 6):
    c = config('lm')
    c.model.n_layer, c.model.scan_layers = n_layer, scan
    sizes.append(compiled_step(c).as_text().count('\n'))
  # Unrolled, the 4 more layers add their forward, backward and update (2.6x the lines).
  assert sizes[1] < 1.05 * sizes[0] if scan else sizes[1] > 2 * sizes[0], sizes


@pytest.mark.parametrize('task, remat, scan', [('lm', 'full', True), ('diffusion', 'dots', False)])
def test_remat_trains_as_without_it_over_ten_steps(task, remat, scan):
  c = config(task)
  c.model.scan_layers = scan
  kept = ten_losses(c)
  c.model.remat = remat
  np.testing.assert_allclose(ten_losses(c), kept, rtol=1e-5)


def remat_config(remat: str, dtype: str = 'float32'):
  """Wide against its sequence, so that the matmuls dominate the recomputed work."""
  c = config('lm')
  c.update(dict(attention='xla', batch_size=4, seq_len=64, dtype=dtype))
  c.model.update(dict(n_layer=2, d_model=256, n_head=4, d_ff=1024, remat=remat))
  return c


@pytest.mark.parametrize('dtype', ['float32', 'bfloat16'])  # bf16: dots seen by name, matmul.py
def test_remat_recomputes_what_its_policy_does_not_keep(dtype):
  """XLA's FLOP count of the step against one worked out here by hand. `full` recomputes a
  forward pass of the blocks, less the MLP's output matmul, whose result no backward needs: the
  four attention projections and the MLP's input matrix (2·D·(4D + F) per token), and the two
  score matmuls over all L×L pairs (XLA's attention computes the masked half too). `dots` keeps
  the projections' outputs and attention's output, so it recomputes QK^T alone: not PV, whose
  output the backward of the output projection needs (nor, on a GPU, the fused kernel:
  tests/test_lowering.py)."""
  counts = {r: compiled_step(remat_config(r, dtype)).cost_analysis()['flops']
            for r in ('none', 'dots', 'full')}
  c = remat_config('none')
  m, L = c.model, c.seq_len
  D, F = m.d_model, m.d_ff
  token_layers = m.n_layer * c.batch_size * L
  projections, score_matmul = token_layers * 2 * D * (4 * D + F), token_layers * 2 * L * D
  # Both also recompute the norms, RoPE, softmax and GELU: about 1% at this shape.
  assert counts['full'] - counts['none'] == pytest.approx(projections + 2 * score_matmul, rel=0.02)
  assert counts['full'] - counts['dots'] == pytest.approx(projections + score_matmul, rel=0.01)
