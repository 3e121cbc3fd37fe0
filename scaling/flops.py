"""FLOPs by convention for the LM (Kaplan; Chinchilla Appendix F), parameter counts, and MFU.

Conventions (per token; training = forward + backward = 3 × forward, as both papers assume):
- 'kaplan' (Kaplan et al. 2020, Table 1): 2N + 2·n_layer·n_ctx·d_attn, where N counts the
  non-embedding weight matrices.
- 'chinchilla' (Hoffmann et al. 2022, Appendix F): embeddings, QKV, attention logits, softmax,
  attention·values, output projection, MLP and final logits, all counted as dense matmuls.

Causal masking: Chinchilla counts the whole n_ctx × n_ctx score matrix, which is what our model
computes (it masks, it does not skip). Kaplan's context term is half of the full QKᵀ plus A·V cost
(4·n_layer·n_ctx·d_attn), i.e. what a kernel that skips the masked half would do.

A third count, for MFU only (never a run's compute budget: run.json keeps the two above), is
MaxText's (maxtext_utils.calculate_tflops_training_per_device): the weight matmuls, the logits
(the unembedding, not the embedding lookup), and QKᵀ and A·V halved under the causal mask, no
softmax. Per token it is Kaplan's count plus the logits' 2·D·V. For the ~350M LM of
benchmarks/gpu.sh (sequence 2048, vocabulary 32768) Chinchilla's count is 1.22× it, so an MFU
means little without its convention.
"""

import functools
import time

import jax
import jax.numpy as jnp
from ml_collections import config_dict

from analysis import hardware  # pure data: scaling may import it, analysis never imports scaling
from scaling.errors import ConfigError

CONVENTIONS = ('kaplan', 'chinchilla')


def _mlp_matrices(m: config_dict.ConfigDict) -> int:
  return 3 if m.mlp == 'swiglu' else 2


def lm_param_counts(m: config_dict.ConfigDict) -> dict[str, int]:
  """Exact parameter counts of scaling.models.transformer.Transformer."""
  D, V = m.d_model, m.vocab_size
  per_layer = 4 * D * D + _mlp_matrices(m) * D * m.d_ff + 2 * D  # attention, MLP, two norms
  nonembedding = m.n_layer * per_layer + D  # + final norm
  embedding = V * D * (1 if m.tied_embeddings else 2)
  return {'total': nonembedding + embedding, 'nonembedding': nonembedding}


def lm_forward_flops_per_token(m: config_dict.ConfigDict, convention: str) -> float:
  D, V, L, F, H = m.d_model, m.vocab_size, m.seq_len, m.d_ff, m.n_head
  d_attn = D  # n_head × head_dim
  mlp = 2 * _mlp_matrices(m) * D * F
  if convention == 'kaplan':
    n = m.n_layer * (4 * D * d_attn + _mlp_matrices(m) * D * F)
    return 2 * n + 2 * m.n_layer * L * d_attn
  if convention == 'chinchilla':
    attention = 2 * 3 * D * d_attn + 2 * L * d_attn + 3 * H * L + 2 * L * d_attn + 2 * d_attn * D
    return 2 * V * D + m.n_layer * (attention + mlp) + 2 * D * V
  raise ValueError(f'unknown FLOP convention {convention!r}; use one of {CONVENTIONS}')


def lm_train_flops_per_token(m: config_dict.ConfigDict) -> dict[str, float]:
  return {c: 3 * lm_forward_flops_per_token(m, c) for c in CONVENTIONS}


def lm_maxtext_train_flops_per_token(m: config_dict.ConfigDict) -> float:
  """MaxText's count (module docstring): Kaplan's, plus the logits' 2·D·V, times 3."""
  return 3 * (lm_forward_flops_per_token(m, 'kaplan') + 2 * m.d_model * m.vocab_size)


def table_peak_flops(device_kind: str, dtype: str = 'bfloat16') -> float | None:
  """Dense peak FLOP/s of one chip computing in `dtype`, from the one device table
  (analysis.hardware); None for a chip it does not know."""
  found = hardware.for_device_kind(device_kind)
  return found[1].peaks[dtype] if found else None


@functools.cache
def measured_matmul_flops(dtype: str = 'float32', n: int = 1024, reps: int = 10) -> float:
  """Best FLOP/s of one n x n x n matmul in `dtype`, summed in float32, on the default device:
  a CPU host's peak (shared by all of its, possibly fake, CPU devices), or an accelerator's real
  ceiling at a large n (benchmarks/gpu.sh)."""
  x = jax.random.normal(jax.random.key(0), (n, n), dtype)  # a GPU multiplies constants faster
  matmul = jax.jit(lambda a, b: jnp.matmul(a, b, preferred_element_type=jnp.float32))
  matmul(x, x).block_until_ready()
  best = float('inf')
  for _ in range(reps):
    start = time.perf_counter()
    matmul(x, x).block_until_ready()
    best = min(best, time.perf_counter() - start)
  return 2 * n**3 / best


# The side of the matmul whose FLOP/s is an accelerator's real ceiling: large enough to saturate it.
ACCELERATOR_CEILING_N = 8192


def matmul_ceiling(device: jax.Device, dtype: str) -> float:
  """One device's measured matmul FLOP/s in `dtype`: on a CPU the host's peak shared by its
  devices, as peak_flops_per_device has it; on an accelerator at ACCELERATOR_CEILING_N, the
  ceiling its table peak is to be compared with."""
  if device.platform == 'cpu':
    return measured_matmul_flops(dtype) / jax.local_device_count()
  return measured_matmul_flops(dtype, ACCELERATOR_CEILING_N)


def peak_flops_per_device(device: jax.Device, dtype: str, override: float = 0.0) -> float:
  """MFU's denominator: the peak at the run's compute dtype (a float32 run against the float32
  peak); measured on a CPU; `override` (--config.peak_flops) wins."""
  if override > 0:
    return override
  peak = table_peak_flops(device.device_kind, dtype)
  if peak is not None:
    return peak
  if device.platform == 'cpu':
    return matmul_ceiling(device, dtype)
  raise ConfigError(f'peak_flops: no peak FLOP/s known for {device.device_kind!r}; set '
                    f'--config.peak_flops to its dense {dtype} FLOP/s')


def mfu(flops_per_token: float, tokens_per_s: float, peak_per_device: float, n_devices: int) -> float:
  return flops_per_token * tokens_per_s / (peak_per_device * n_devices)
