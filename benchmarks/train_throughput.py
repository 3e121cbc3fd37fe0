"""Steady-state training throughput of the real train step: tokens/s, model FLOP/s and MFU.

  python -m benchmarks.train_throughput --config=configs/lm.py:size=small --config.seq_len=256

Defaults to the shape used to compare against nanodo and nanoGPT on 2 CPU cores: `small`
(4 layers, width 256, 3.1M non-embedding parameters), sequence 256, batch 16. The first
`--warmup` steps (compilation) are not timed. MFU uses Chinchilla-convention FLOPs and the device
peak from scaling.flops (measured by a matmul on CPU).
"""

import time

import jax
from absl import app, flags
from ml_collections import config_flags

from scaling import flops, sharding, steps
from scaling.tasks import TASKS

_CONFIG = config_flags.DEFINE_config_file('config', 'configs/lm.py:size=small', 'model to time')
_STEPS = flags.DEFINE_integer('steps', 20, 'timed steps')
_WARMUP = flags.DEFINE_integer('warmup', 3, 'untimed steps first')


def main(argv) -> None:
  del argv
  c = _CONFIG.value
  steps.enable_compilation_cache()
  task = TASKS[c.task]
  mesh = sharding.make_mesh(c.mesh)
  fns = steps.build(c, task, mesh)
  data = task.make_data(c, jax.process_index(), jax.process_count())
  batches = [sharding.global_batch(data.train_batch(i), mesh) for i in range(_STEPS.value)]
  state = fns.init()
  for i in range(_WARMUP.value):
    state, metrics = fns.train_step(state, batches[i], i)
  jax.block_until_ready(metrics)
  start = time.perf_counter()
  for i, batch in enumerate(batches):
    state, metrics = fns.train_step(state, batch, i)
  jax.block_until_ready(metrics)
  seconds = (time.perf_counter() - start) / _STEPS.value

  described = task.describe(c)
  tokens_per_s = described['tokens_per_step'] / seconds
  flops_per_s = tokens_per_s * described['flops_per_token']['chinchilla']
  peak = flops.peak_flops_per_device(jax.devices()[0], c.dtype, c.peak_flops)
  print(f'model      {c.task} {dict(described["model"])}')
  print(f'params     {described["n_params"]:,} ({described["n_params_nonembedding"]:,} non-embedding)')
  print(f'devices    {jax.device_count()} x {jax.devices()[0].device_kind}, dtype {c.dtype}')
  print(f'step       {seconds * 1e3:.1f} ms')
  print(f'tokens/s   {tokens_per_s:,.0f}')
  print(f'FLOP/s     {flops_per_s:.3e} (chinchilla convention; kaplan '
        f'{tokens_per_s * described["flops_per_token"]["kaplan"]:.3e})')
  print(f'peak       {peak * jax.device_count():.3e} FLOP/s')
  print(f'MFU        {flops.mfu(described["flops_per_token"]["chinchilla"], tokens_per_s, peak, jax.device_count()):.1%}')


if __name__ == '__main__':
  app.run(main)
