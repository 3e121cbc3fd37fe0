"""benchmarks/gpu.sh's first stage, within 30 s on a GPU: what the machine is, and that the parts of
the step work there, before minutes go into timing it. Prints one JSON line; on a failed check,
one line `preflight: ...` on stderr and exit 1.

- versions: Python, jax, jaxlib, flax, optax, ml_collections, the device and, on a GPU, cuDNN;
- attention: the kernel the models take on this platform in bfloat16 (cuDNN's fused attention on
  a GPU, scaling/precision.py) against jax's XLA attention in float32 on the same inputs, causal,
  values and the gradients of q, k and v, within ATTENTION_RTOL;
- the matmul ceiling: the best FLOP/s of one large bf16 matmul (scaling.flops.matmul_ceiling),
  which the timed stages take as `--matmul_ceiling`;
- the LM's first loss: gpu.sh's LM (benchmarks/gpu_shapes.py) at 2 layers and batch 2, step 0, within
  LOSS_RTOL of ln V, what a fresh model with small logits scores on random tokens.

  python -m benchmarks.gpu_preflight [--dry_run]   # --dry_run: gpu_shapes' tiny shapes, any host
"""

import argparse
import importlib.metadata
import json
import math
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import gpu_shapes
from scaling import flops, precision, sharding, steps
from scaling.data import synthetic
from scaling.models import attention
from scaling.tasks import TASKS

# bf16 inputs, probabilities rounded to bf16 before PV, a bf16 output: a few bf16 roundings.
ATTENTION_RTOL = 2**-5
LOSS_RTOL = 0.05
ATTENTION_SHAPE = (2, 256, 4, 64)  # B, L, H, K: long enough for the CPU's blocked kernel too
PACKAGES = ('jax', 'jaxlib', 'flax', 'optax', 'ml_collections')


def versions() -> dict:
  device = jax.devices()[0]
  found = {'python': sys.version.split()[0], 'platform': device.platform,
           'device_kind': device.device_kind, 'devices': jax.device_count()}
  for package in PACKAGES:
    found[package] = importlib.metadata.version(package.replace('_', '-'))
  if device.platform == 'gpu':
    from jax._src.cudnn import fused_attention_stablehlo  # pylint: disable=g-import-not-at-top
    found['cudnn'] = fused_attention_stablehlo.check_cudnn_version()
  return found


def relative_error(got: jax.Array, want: jax.Array) -> float:
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  return float(np.linalg.norm(got - want) / np.linalg.norm(want))


def attention_errors() -> tuple[str, dict[str, float]]:
  """The platform's bf16 kernel against jax's float32 XLA attention: {out, dq, dk, dv: error}."""
  B, L, H, K = ATTENTION_SHAPE
  keys = jax.random.split(jax.random.key(0), 4)
  q, k, v = (jax.random.normal(key, (B, L, H, K)).astype(jnp.bfloat16) for key in keys[:3])
  g = jax.random.normal(keys[3], (B, L, H, K))
  kernel = precision.attention_kernel('auto', 'bfloat16', K, causal=True, seq_len=L)
  bf16 = lambda q, k, v: attention.attention(q, k, v, None, causal=True, kernel=kernel)
  f32 = lambda q, k, v: jax.nn.dot_product_attention(q, k, v, is_causal=True,
                                                     implementation='xla')
  results = []
  for f, inputs in ((bf16, (q, k, v)), (f32, tuple(x.astype(jnp.float32) for x in (q, k, v)))):
    loss = lambda *x, f=f: jnp.sum(f(*x).astype(jnp.float32) * g)
    out = jax.jit(f)(*inputs)
    results.append((out, *jax.jit(jax.grad(loss, (0, 1, 2)))(*inputs)))
  return kernel, {name: relative_error(got.astype(jnp.float32), want)
                  for name, got, want in zip(('out', 'dq', 'dk', 'dv'), *results)}


def first_loss(dry_run: bool) -> tuple[float, float]:
  """(step-0 train loss, ln V) of gpu.sh's LM at 2 layers, on random tokens."""
  c = gpu_shapes.get_config(f'task=lm,dry_run={dry_run}')
  c.model.n_layer, c.batch_size = 2, 2  # compiles in seconds; 2 x 2048 tokens are plenty
  precision.resolve(c)
  mesh = sharding.make_mesh(c.mesh)
  fns = steps.build(c, TASKS[c.task], mesh)
  batch = sharding.global_batch(synthetic.batch(c, np.random.default_rng(0)), mesh)
  _, metrics = fns.train_step(fns.init(), batch, 0)
  return float(metrics['train_loss']), math.log(c.model.vocab_size)


def main() -> int:
  parser = argparse.ArgumentParser(prog='python -m benchmarks.gpu_preflight')
  parser.add_argument('--dry_run', action='store_true', help="gpu_shapes' tiny LM, on any host")
  args = parser.parse_args()
  start = time.perf_counter()
  out = {'stage': 'preflight', **versions()}
  out['attention_kernel'], out['attention_errors'] = attention_errors()
  out['matmul_ceiling_flops'] = flops.matmul_ceiling(jax.devices()[0], 'bfloat16')
  out['first_train_loss'], out['ln_vocab'] = first_loss(args.dry_run)
  out['seconds'] = time.perf_counter() - start
  worst = max(out['attention_errors'], key=out['attention_errors'].get)
  if out['attention_errors'][worst] > ATTENTION_RTOL:
    print(f'preflight: {out["attention_kernel"]} attention is off jax\'s float32 attention by '
          f'{out["attention_errors"][worst]:.3g} in {worst} (relative; at most {ATTENTION_RTOL:.3g})',
          file=sys.stderr)
    return 1
  if abs(out['first_train_loss'] / out['ln_vocab'] - 1) > LOSS_RTOL:
    print(f'preflight: the LM\'s step-0 loss is {out["first_train_loss"]:.4f}, not within '
          f'{LOSS_RTOL:.0%} of ln V = {out["ln_vocab"]:.4f}', file=sys.stderr)
    return 1
  print(json.dumps(out))
  return 0


if __name__ == '__main__':
  sys.exit(main())
