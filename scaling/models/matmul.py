"""Every matmul of both models: an einsum of two operands in the compute dtype, accumulated in
float32, forward and backward.

Why: XLA:CPU runs a bfloat16 dot that outputs bfloat16 slower than a float32 one, but one that
accumulates in float32 (`preferred_element_type=float32`) 2-5x faster, on CPUs with AVX512-BF16 or
AMX (docs/performance.md); GPUs and TPUs accumulate in float32 in any case. Autodiff does not keep
that form: it transposes a dot with a float32 result into dots of the float32 cotangent with the
16-bit operands, which XLA lowers as float32 x float32 (TF32 on a GPU, at half the bf16 rate).
So in a 16-bit dtype `einsum` carries its own backward: the cotangent is cast to the compute
dtype, as flash attention does with its score gradients, and both operand gradients are again
16-bit products accumulated in float32, returned in each operand's own dtype (a float32
parameter's gradient is never rounded to 16 bits).

In float32 `einsum` is `jnp.einsum` with autodiff's backward, what the models computed before this
module: float32 training gives the same losses and parameters to the bit (docs/performance.md).
"""

import functools

import jax
import jax.numpy as jnp
from jax.ad_checkpoint import checkpoint_name

# The name of a 16-bit einsum's output when no index is shared by both operands and the output
# (a projection or an MLP matmul, not attention's scores): the values `dots_with_no_batch_dims`
# saves of a float32 dot, which it cannot see inside the custom VJP (layer_stack.REMAT).
NO_BATCH_DIMS = 'matmul_without_batch_dims'


def einsum(spec: str, a: jax.Array, b: jax.Array, dtype, out_dtype=None) -> jax.Array:
  """jnp.einsum(spec, a, b) with both operands cast to `dtype`, products summed in float32, the
  result cast to `out_dtype` (default: `dtype`). `spec` is explicit ('bld,dv->blv'), with no
  index summed within one operand alone."""
  dtype, out_dtype = jnp.dtype(dtype), jnp.dtype(out_dtype or dtype)
  if dtype == jnp.float32:
    return jnp.einsum(spec, a.astype(dtype), b.astype(dtype),
                      preferred_element_type=jnp.float32).astype(out_dtype)
  inputs, out = spec.split('->')
  a_spec, b_spec = inputs.split(',')
  for own, other in ((a_spec, b_spec), (b_spec, a_spec)):
    if set(own) - set(other) - set(out):
      raise ValueError(f'einsum {spec!r}: an index of {own!r} is summed within it alone')
  result = _einsum16(spec, dtype, out_dtype, a, b)
  if not set(a_spec) & set(b_spec) & set(out):
    result = checkpoint_name(result, NO_BATCH_DIMS)
  return result


def _product(spec: str, x: jax.Array, y: jax.Array, out_dtype) -> jax.Array:
  """The 16-bit product of x and y summed in float32, except one that XLA:CPU cannot run so."""
  bf16_sum = lambda x, y: jnp.einsum(spec, x, y, preferred_element_type=jnp.float32)
  (x_spec, y_spec), out_spec = spec.split('->')[0].split(','), spec.split('->')[1]
  summed = [n for i, n in zip(x_spec, x.shape) if i not in out_spec and n > 1]
  if _summed_last(x_spec, out_spec) or len(summed) > 1:
    return bf16_sum(x, y).astype(out_dtype)
  # x summed over one axis that is not its last (attention's key and value gradients, summed
  # over queries; a DiT modulation's weight gradient, over the batch): XLA:CPU judges the bf16
  # product supported before its later passes fold transposes into it, and then hands it to a
  # kernel without bf16 x bf16 -> f32, which fails when the step runs. On a CPU it is computed in
  # float32, as XLA:CPU computes any bf16 product it cannot run; over several axes XLA:CPU
  # reshapes x into the form it runs in bf16.
  f32_sum = lambda x, y: bf16_sum(x.astype(jnp.float32), y.astype(jnp.float32))
  return jax.lax.platform_dependent(x, y, cpu=f32_sum, default=bf16_sum).astype(out_dtype)


def _summed_last(spec: str, out_spec: str) -> bool:
  return spec.endswith(''.join(i for i in spec if i not in out_spec))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _einsum16(spec, dtype, out_dtype, a, b):
  return _product(spec, a.astype(dtype), b.astype(dtype), out_dtype)


def _forward(spec, dtype, out_dtype, a, b):
  return _einsum16(spec, dtype, out_dtype, a, b), (a, b)


def _operand_gradient(g_spec: str, g: jax.Array, other_spec: str, other: jax.Array,
                      target_spec: str, target_dtype) -> jax.Array:
  """The product of the cotangent and the other operand that is one operand's gradient, with the
  operand first that XLA:CPU's bf16 matmul takes as its left: one summed over its last axes (a
  projection's cotangent, attention's scores over their keys); else one whose product needs no
  transpose into `target_spec` (a weight's gradient); else the smaller."""

  def preference(pair):
    (first_spec, first), (second_spec, _) = pair
    natural = ''.join([i for i in first_spec if i in second_spec and i in target_spec] +
                      [i for i in first_spec if i not in second_spec] +
                      [i for i in second_spec if i not in first_spec])
    return not _summed_last(first_spec, target_spec), natural != target_spec, first.size

  pair = min([((g_spec, g), (other_spec, other)), ((other_spec, other), (g_spec, g))],
             key=preference)
  (first_spec, first), (second_spec, second) = pair
  return _product(f'{first_spec},{second_spec}->{target_spec}', first, second, target_dtype)


def _backward(spec, dtype, out_dtype, residuals, g):
  del out_dtype
  a, b = residuals
  (a_spec, b_spec), out_spec = spec.split('->')[0].split(','), spec.split('->')[1]
  g, a16, b16 = g.astype(dtype), a.astype(dtype), b.astype(dtype)
  return (_operand_gradient(out_spec, g, b_spec, b16, a_spec, a.dtype),
          _operand_gradient(out_spec, g, a_spec, a16, b_spec, b.dtype))


_einsum16.defvjp(_forward, _backward)
