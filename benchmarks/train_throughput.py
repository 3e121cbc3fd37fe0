"""Steady-state throughput of the real train step: tokens/s (images/s for the DiT), FLOP/s, MFU,
compile time and peak memory.

  python -m benchmarks.train_throughput                       # the LM shape compared with peers
  python -m benchmarks.train_throughput --json                # one JSON line (../shared/bench)
  python -m benchmarks.train_throughput --task=dit --config=configs/dit.py:size=B/2 \
      --config.model.image_size=32 --config.model.channels=4 --config.model.num_classes=1000

Defaults: `--task=lm` times configs/lm.py:size=small at sequence 256, batch 16 (the shape
compared with nanodo and nanoGPT on 2 CPU cores, docs/performance.md); `--task=dit` times
configs/dit.py:size=tiny. Batches are random tokens or images of the config's shapes: a step's
time does not depend on the values, and a fresh accelerator host has no datasets (input time is
benchmarks/data_loading.py's). Compilation (`lower().compile()`) is timed apart, then `--warmup`
untimed steps run (the first one's loss is `first_train_loss`: about ln V for a fresh LM), then
each of `--steps` steps is timed to its end (the median is reported).

MFU in three conventions (scaling/flops.py says what each counts): `mfu`, Chinchilla-convention
model FLOP/s over the peak of the compute dtype (the device table, or a CPU's measured matmul);
`mfu_maxtext`, MaxText's count over the same peak; `mfu_of_matmul_ceiling`, Chinchilla's count
over `matmul_ceiling_flops`, the best FLOP/s of one large matmul in the compute dtype measured on
this device (`--matmul_ceiling` passes one measured before). Under `model.remat` the model FLOPs
leave out the recomputation, which XLA's count includes. `flops_per_s`, `xla_flops_per_step`,
`flops_6n_per_step` and `cpu_util` are the fields the peer harnesses of ../shared/bench print, for
its table. `--profile_dir` also traces a few steps after the timed ones (jax.profiler), with the
compiled program beside the trace, for `python -m benchmarks.profile_step --from_dir`.
"""

import json
import os
import resource
import statistics
import sys
import time

import jax
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from scaling import dit_flops, flops, precision, sharding, steps
from scaling.data import synthetic
from scaling.tasks import TASKS, lm

DEFAULT_CONFIGS = {'lm': ['--config=configs/lm.py:size=small', '--config.seq_len=256'],
                   'dit': ['--config=configs/dit.py:size=tiny']}


def with_default_config(argv: list[str]) -> list[str]:
  """--task picks the default --config. config_flags cannot default on another flag, and it
  registers the --config.FIELD overrides it finds in sys.argv when the flag is defined, so the
  default goes into sys.argv before that (this module and benchmarks.profile_step are CLIs)."""
  if any(a.startswith('--config=') for a in argv):
    return argv
  task = next((a.split('=', 1)[1] for a in argv if a.startswith('--task=')), 'lm')
  return argv[:1] + DEFAULT_CONFIGS.get(task, DEFAULT_CONFIGS['lm']) + argv[1:]


sys.argv = with_default_config(sys.argv)
_TASK = flags.DEFINE_enum('task', 'lm', list(DEFAULT_CONFIGS), 'lm or dit: sets the default --config')
_CONFIG = config_flags.DEFINE_config_file('config', 'configs/lm.py:size=small', 'model to time')
_STEPS = flags.DEFINE_integer('steps', 20, 'timed steps')
_WARMUP = flags.DEFINE_integer('warmup', 3, 'untimed steps after compilation')
_JSON = flags.DEFINE_bool('json', False, 'print one JSON line instead of the table')
_CEILING = flags.DEFINE_float('matmul_ceiling', 0.0, 'FLOP/s of one large matmul on one device, '
                              'measured before (benchmarks/gpu_preflight.py); 0: measure it here')
_PROFILE_DIR = flags.DEFINE_string('profile_dir', '', 'trace PROFILE_STEPS more steps into it')

PROFILE_STEPS = 3
HLO_FILE, TRACE_FILE = 'step.hlo.txt', 'trace.json'  # beside the trace of --profile_dir
MAXTEXT_FLOPS_PER_TOKEN = {
    'lm': lambda c: flops.lm_maxtext_train_flops_per_token(lm.model_config(c)),
    'diffusion': lambda c: dit_flops.dit_maxtext_train_flops_per_token(c.model)}


def peak_memory_bytes(device: jax.Device) -> tuple[int, str]:
  """The accelerator's peak bytes in use, or this process's peak RSS on a CPU host."""
  stats = device.memory_stats() if device.platform != 'cpu' else None
  if stats and 'peak_bytes_in_use' in stats:
    return int(stats['peak_bytes_in_use']), 'device'
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, 'host_rss'


def measure(c) -> dict:
  steps.enable_compilation_cache()
  precision.resolve(c)
  task = TASKS[c.task]
  mesh = sharding.make_mesh(c.mesh)
  fns = steps.build(c, task, mesh)
  rng = np.random.default_rng(0)
  batches = [sharding.global_batch(synthetic.batch(c, rng), mesh) for _ in range(2)]
  state = fns.init()
  start = time.perf_counter()
  compiled = fns.train_step.lower(state, batches[0], 0).compile()
  compile_s = time.perf_counter() - start
  memory = compiled.memory_analysis()
  if _WARMUP.value < 1:
    raise ValueError('--warmup: at least 1, the step whose loss is first_train_loss')
  for i in range(_WARMUP.value):
    state, metrics = compiled(state, batches[i % 2], i)
    if i == 0:
      first_train_loss = float(metrics['train_loss'])
  jax.block_until_ready(metrics)
  times, cpu_start = [], time.process_time()
  for i in range(_STEPS.value):
    start = time.perf_counter()
    state, metrics = compiled(state, batches[i % 2], i)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - start)
  cpu_util = (time.process_time() - cpu_start) / sum(times)
  if _PROFILE_DIR.value:
    trace(compiled, state, batches, _PROFILE_DIR.value)
  step_s = statistics.median(times)
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  xla_flops = None if c.model.get('scan_layers', False) else float(cost['flops'])

  described = task.describe(c)
  device = jax.devices()[0]
  tokens_per_s = described['tokens_per_step'] / step_s
  model_flops_per_s = {k: tokens_per_s * v for k, v in described['flops_per_token'].items()}
  model_flops_per_s['maxtext'] = tokens_per_s * MAXTEXT_FLOPS_PER_TOKEN[c.task](c)
  m = c.model
  # nanoGPT's estimate_mfu count, as ../shared/bench's peers report it: 6N + 12·L·D·seq per token.
  six_n = (6 * described['n_params'] + 12 * m.n_layer * m.d_model * m.get('seq_len', 0))
  six_n *= described['tokens_per_step']
  peak = flops.peak_flops_per_device(device, c.dtype, c.peak_flops) * jax.device_count()
  ceiling = (_CEILING.value or flops.matmul_ceiling(device, c.dtype)) * jax.device_count()
  peak_bytes, peak_kind = peak_memory_bytes(device)
  out = {
      'task': c.task, 'size': c.size, 'dtype': c.dtype, 'attention': c.attention,
      'remat': c.model.get('remat', 'none'), 'scan_layers': c.model.get('scan_layers', False),
      'devices': f'{jax.device_count()} x {device.device_kind}',
      'model': {k: v for k, v in described['model'].items()},
      'batch_size': c.batch_size, 'params': described['n_params'],
      'params_nonembedding': described['n_params_nonembedding'],
      'tokens_per_step': described['tokens_per_step'],
      'step_s_median': step_s, 'step_s_min': min(times), 'tokens_per_s': tokens_per_s,
      'model_flops_per_s': model_flops_per_s, 'peak_flops': peak,
      'mfu': model_flops_per_s['chinchilla'] / peak,
      'mfu_maxtext': model_flops_per_s['maxtext'] / peak,
      'matmul_ceiling_flops': ceiling,
      'mfu_of_matmul_ceiling': model_flops_per_s['chinchilla'] / ceiling,
      'compile_s': compile_s, 'timed_steps': _STEPS.value,
      # What the peers' harnesses report: XLA's own count of the compiled step, and 6N. Under
      # model.scan_layers XLA counts the scanned block once, not once per layer: no count then.
      'xla_flops_per_step': xla_flops, 'flops_per_s': xla_flops and xla_flops / step_s,
      'flops_6n_per_step': six_n, 'cpu_util': cpu_util,
      'peak_memory_bytes': peak_bytes, 'peak_memory_kind': peak_kind,
      'compiled_temp_bytes': getattr(memory, 'temp_size_in_bytes', None),
      'first_train_loss': first_train_loss, 'final_train_loss': float(metrics['train_loss']),
  }
  if c.task == 'diffusion':
    out['images_per_s'] = c.batch_size / step_s
  return out


def trace(compiled, state, batches: list, out: str, n_steps: int = PROFILE_STEPS) -> float:
  """n_steps more steps under jax.profiler (a Perfetto trace in `out`), with the compiled
  program's text (HLO_FILE) and the wall seconds per step and the step count (TRACE_FILE) beside
  it; returns the wall seconds per step."""
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, HLO_FILE), 'w', encoding='utf-8') as f:
    f.write(compiled.as_text())
  with jax.profiler.trace(out, create_perfetto_trace=True):
    start = time.perf_counter()
    for i in range(n_steps):
      state, metrics = compiled(state, batches[i % len(batches)], i)
    jax.block_until_ready(metrics)
    step_s = (time.perf_counter() - start) / n_steps
  with open(os.path.join(out, TRACE_FILE), 'w', encoding='utf-8') as f:
    json.dump({'step_s': step_s, 'steps': n_steps}, f)
  return step_s


def main(argv) -> None:
  del argv
  r = measure(_CONFIG.value)
  if _JSON.value:
    print(json.dumps(r))
    return
  unit = (f'{r["images_per_s"]:,.1f} images/s ({r["tokens_per_s"]:,.0f} patch tokens/s)'
          if 'images_per_s' in r else f'{r["tokens_per_s"]:,.0f} tokens/s')
  print(f'model      {r["task"]} {r["size"]} {r["model"]}, batch {r["batch_size"]}')
  print(f'params     {r["params"]:,} ({r["params_nonembedding"]:,} non-embedding)')
  print(f'devices    {r["devices"]}, dtype {r["dtype"]}, attention {r["attention"]}')
  print(f'compile    {r["compile_s"]:.1f} s')
  print(f'step       {r["step_s_median"] * 1e3:.1f} ms median of {_STEPS.value} '
        f'(min {r["step_s_min"] * 1e3:.1f} ms)')
  print(f'throughput {unit}')
  print(f'FLOP/s     {r["model_flops_per_s"]["chinchilla"]:.3e} chinchilla convention, '
        f'{r["model_flops_per_s"]["kaplan"]:.3e} kaplan'
        + ('' if r['flops_per_s'] is None else f', {r["flops_per_s"]:.3e} counted by XLA'))
  print(f'peak       {r["peak_flops"]:.3e} FLOP/s ({r["dtype"]})')
  print(f'MFU        {r["mfu"]:.1%} chinchilla, {r["mfu_maxtext"]:.1%} maxtext (of the peak); '
        f'{r["mfu_of_matmul_ceiling"]:.1%} chinchilla of the measured matmul ceiling '
        f'({r["matmul_ceiling_flops"]:.3e} FLOP/s)')
  print(f'memory     {r["peak_memory_bytes"] / 2**20:,.0f} MiB peak ({r["peak_memory_kind"]})')


if __name__ == '__main__':
  app.run(main)
