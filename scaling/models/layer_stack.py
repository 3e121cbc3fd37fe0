"""A model's stack of identical blocks: a list of layers, or one stacked block under `lax.scan`.

Unrolled (`model.scan_layers=False`, the default), XLA compiles every layer, and every layer's
optimizer update, separately, so compile time grows with depth. Under `scan_layers=True` the
blocks are built once with `nnx.vmap`, so each parameter carries a leading 'layers' axis
('blocks/attn/wq' of shape L x D x H x K, as under MaxText's `scan_layers`), and the forward pass
is one `lax.scan` over them: XLA compiles one block body, forward and backward, and one AdamW
update per kind of parameter, whatever the depth (docs/performance.md).

Stacking inside the forward pass of an unrolled model instead would keep per-layer parameters,
but then the optimizer update stays one program per layer and parameter, and its compile time
still grows with depth.

`model.remat` trades compute for activation memory, per block, as MaxText's `remat_policy` does:
`none` keeps every activation of the forward pass for the backward, `dots` keeps the outputs of
the matmuls that have no batch dimension (the projections and the MLP's) and attention's output
(attention's scores, softmax, norms and activations are recomputed, but not the fused kernel or
PV), `full` keeps only each block's input and recomputes the block. The gradients are the same
either way (tests/test_layer_stack.py).
"""

from typing import Callable

import jax
from flax import nnx

from scaling.models import attention, matmul

LAYERS = 'layers'  # the logical name of the stacked axis (scaling/sharding.py: never sharded)
# cuDNN's fused attention is a custom VJP whose backward needs the softmax statistics of its
# forward as well as its output; keeping only the output, remat ran the fused forward twice. Its
# forward primitive has this name in jax 0.10 and 0.11 (jax/_src/cudnn/
# fused_attention_stablehlo.py); tests/test_lowering.py counts the forward calls under dots.
CUDNN_ATTENTION_FORWARD = 'dot_product_attention_fwd_wrapper'


def _saves_fused_attention(prim, *_, **__) -> bool:
  return prim.name == CUDNN_ATTENTION_FORWARD


_SAVEABLE = jax.checkpoint_policies
REMAT = {'none': None,
         # float32 dots are seen as dots; 16-bit ones, inside matmul.py's custom VJP, by name.
         'dots': _SAVEABLE.save_from_both_policies(
             _SAVEABLE.save_from_both_policies(_SAVEABLE.dots_with_no_batch_dims_saveable,
                                               _saves_fused_attention),
             _SAVEABLE.save_only_these_names(matmul.NO_BATCH_DIMS, attention.ATTENTION_OUT)),
         'full': _SAVEABLE.nothing_saveable}


def make(make_block: Callable[[nnx.Rngs], nnx.Module], n_layer: int, rngs: nnx.Rngs, *,
         scan: bool) -> nnx.Module:
  """n_layer blocks, each drawn with its own keys: an nnx.List, or one block of stacked params."""
  if not scan:
    return nnx.List([make_block(rngs) for _ in range(n_layer)])

  @nnx.split_rngs(splits=n_layer)
  @nnx.vmap(in_axes=(0,), out_axes=0, transform_metadata={nnx.PARTITION_NAME: LAYERS})
  def stacked(rngs: nnx.Rngs) -> nnx.Module:
    return make_block(rngs)

  return stacked(rngs)


def apply(blocks: nnx.Module, x: jax.Array, *args, scan: bool, remat: str = 'none') -> jax.Array:
  """x through every block in order; `args` (a condition) are the same for every block; `remat`
  one of REMAT."""

  def run(graphdef, block_state, x, *args):
    return nnx.merge(graphdef, block_state)(x, *args)

  if remat != 'none':
    # prevent_cse=False under scan, where the loop already keeps XLA from merging the recompute
    # back into the forward pass (jax.checkpoint's documentation).
    run = jax.checkpoint(run, policy=REMAT[remat], prevent_cse=not scan, static_argnums=(0,))
  if not scan:
    for block in blocks:
      x = run(*nnx.split(block), x, *args)
    return x
  graphdef, state = nnx.split(blocks)

  def body(x, layer_state):
    return run(graphdef, layer_state, x, *args), None

  return jax.lax.scan(body, x, state)[0]
