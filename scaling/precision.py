"""What `auto` means for the compute dtype and the attention kernel, by platform.

- `dtype`: GPUs and TPUs compute in bfloat16, the input type of their matrix units (parameters,
  optimizer state, norms, softmax and logits stay float32); CPUs in float32, since most have no
  bfloat16 matmul units and XLA:CPU then emulates them (docs/performance.md).
- `attention`: on a GPU with a 16-bit dtype, cuDNN's fused attention (flash attention: the
  L x L scores never reach memory); elsewhere XLA's own einsum-softmax-einsum.
"""

import jax

DTYPES = ('auto', 'float32', 'bfloat16')
ATTENTION = ('auto', 'xla', 'cudnn')
ACCELERATORS = ('gpu', 'tpu')


def compute_dtype(dtype: str, platform: str | None = None) -> str:
  """The dtype a run computes in: `dtype` itself, or for `auto` the platform's default."""
  if dtype != 'auto':
    return dtype
  return 'bfloat16' if (platform or jax.default_backend()) in ACCELERATORS else 'float32'


def attention_kernel(attention: str, dtype: str, head_dim: int,
                     platform: str | None = None) -> str:
  """'xla' or 'cudnn' for jax.nn.dot_product_attention's `implementation`. `auto` takes cuDNN
  only where its fused kernel is defined: 16-bit inputs and a head dim that is a multiple of 8, at
  most 128."""
  if attention != 'auto':
    return attention
  platform = platform or jax.default_backend()
  fits = compute_dtype(dtype, platform) == 'bfloat16' and head_dim % 8 == 0 and head_dim <= 128
  return 'cudnn' if platform == 'gpu' and fits else 'xla'


def resolve(c) -> None:
  """Replaces `auto` in c.dtype and c.attention by this platform's choice, in place."""
  with c.unlocked():
    c.dtype = compute_dtype(c.dtype)
    c.attention = attention_kernel(c.get('attention', 'auto'), c.dtype,
                                   c.model.d_model // c.model.n_head)
