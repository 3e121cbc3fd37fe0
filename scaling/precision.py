"""What `auto` means for the compute dtype and the attention kernel, by platform.

- `dtype`: GPUs and TPUs compute in bfloat16, the input type of their matrix units (parameters,
  optimizer state, norms, softmax and logits stay float32); CPUs in float32, since most have no
  bfloat16 matmul units and XLA:CPU then emulates them (docs/performance.md).
- `attention`: on a GPU with a 16-bit dtype, cuDNN's fused attention (flash attention: the
  L x L scores never reach memory); on a CPU, the LM's causal attention by query blocks
  (scaling/models/attention.py: XLA ops that skip the masked scores) from sequences of
  BLOCKED_MIN_LEN on; elsewhere, and for the DiT's bidirectional attention, einsum-softmax-einsum
  in XLA ops.
In bfloat16 every matmul takes bfloat16 operands and sums in float32, forward and backward
(scaling/models/matmul.py): XLA:CPU runs those 2-5x faster than float32 on CPUs with AVX512-BF16
or AMX (docs/performance.md), but most CPUs have neither, so `auto` stays float32 there.
"""

import jax

DTYPES = ('auto', 'float32', 'bfloat16')
ATTENTION = ('auto', 'xla', 'cudnn', 'blocked')
ACCELERATORS = ('gpu', 'tpu')
CAUSAL_TASKS = ('lm',)  # tasks whose attention is causal; the DiT's attends both ways
# Below this length the blocked kernel's extra ops cost more than the scores it skips, and it
# compiles slower: float32 train step at width 128 on 2 CPU cores, 0.90-0.93x at L = 64 and
# 1.19-1.28x at 128 (docs/performance.md).
BLOCKED_MIN_LEN = 128


def compute_dtype(dtype: str, platform: str | None = None) -> str:
  """The dtype a run computes in: `dtype` itself, or for `auto` the platform's default."""
  if dtype != 'auto':
    return dtype
  return 'bfloat16' if (platform or jax.default_backend()) in ACCELERATORS else 'float32'


def attention_kernel(attention: str, dtype: str, head_dim: int, causal: bool, seq_len: int,
                     platform: str | None = None) -> str:
  """'xla' or 'cudnn' (jax.nn.dot_product_attention's `implementation`), or 'blocked'. `auto`
  takes cuDNN only where its fused kernel is defined (16-bit inputs and a head dim that is a
  multiple of 8, at most 128), and `blocked` for causal attention on a CPU over at least
  BLOCKED_MIN_LEN positions."""
  if attention != 'auto':
    return attention
  platform = platform or jax.default_backend()
  fits = compute_dtype(dtype, platform) == 'bfloat16' and head_dim % 8 == 0 and head_dim <= 128
  if platform == 'gpu' and fits:
    return 'cudnn'
  return 'blocked' if causal and platform == 'cpu' and seq_len >= BLOCKED_MIN_LEN else 'xla'


def resolve(c, stored: dict | None = None, platform: str | None = None) -> None:
  """Replaces `auto` in c.dtype and c.attention by the choice of `platform` (default: this
  host's), in place; for a run that already has a config.json (`stored`), by the values it
  records, so that a resumed run computes as it did even where `auto` has since changed its
  choice (the CPU's blocked kernel came after runs that recorded `xla`)."""
  stored = stored or {}
  causal = c.task in CAUSAL_TASKS
  with c.unlocked():
    if c.dtype == 'auto' and stored.get('dtype'):
      c.dtype = stored['dtype']
    c.dtype = compute_dtype(c.dtype, platform)
    if c.get('attention', 'auto') == 'auto' and stored.get('attention'):
      c.attention = stored['attention']
    c.attention = attention_kernel(c.get('attention', 'auto'), c.dtype,
                                   c.model.d_model // c.model.n_head, causal=causal,
                                   seq_len=c.model.seq_len if causal else 0,  # the DiT: none
                                   platform=platform)
