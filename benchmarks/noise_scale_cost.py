"""What logging the gradient noise scale costs: the real train step with `log_grad_noise_scale`
off and on, timed in alternation on the same batches (goal: at most 2% of the step, issue 26).

  python -m benchmarks.noise_scale_cost [--config=configs/lm.py:size=small] [--seq-len=256]
      [--batch=16] [--grad-accum=2] [--steps=30] [--warmup=3]

Both steps are compiled first, then run `--warmup` untimed steps each, then `--steps` rounds of
one step off and one step on, each timed to its end; alternating keeps a shared machine's load
from landing on one side. It prints the median step time of each; the cost, the median over
rounds of the ratio on/off minus 1, in wall time and in this process's CPU time (which other jobs
on a shared machine inflate less); and the extra FLOPs that XLA counts in the compiled step. On
one device the noise scale comes from the microbatches of gradient accumulation (`--grad-accum`
>= 2); the per-shard route needs several devices.
"""

import argparse
import json
import time

import jax
import numpy as np

from experiments import runspec
from scaling import precision, sharding, steps
from scaling.data import synthetic
from scaling.tasks import TASKS


def compiled_step(c, mesh, batch):
  fns = steps.build(c, TASKS[c.task], mesh)
  state = fns.init()
  return fns.train_step.lower(state, batch, 0).compile(), state


def timed(step_fn, state, batch, i: int):
  """The step's wall seconds and this process's CPU seconds (which other jobs inflate less)."""
  start = np.array([time.perf_counter(), time.process_time()])
  state, metrics = step_fn(state, batch, i)
  jax.block_until_ready(metrics)
  return state, np.array([time.perf_counter(), time.process_time()]) - start


def xla_flops(compiled) -> float:
  cost = compiled.cost_analysis()
  return float((cost[0] if isinstance(cost, (list, tuple)) else cost)['flops'])


def measure(c, n_steps: int, warmup: int) -> dict:
  steps.enable_compilation_cache()
  precision.resolve(c)
  mesh = sharding.make_mesh(c.mesh)
  batch = sharding.global_batch(synthetic.batch(c, np.random.default_rng(0)), mesh)
  c_on = c.copy_and_resolve_references()
  c_on.log_grad_noise_scale = True
  sides = {'off': compiled_step(c, mesh, batch), 'on': compiled_step(c_on, mesh, batch)}
  states = {name: state for name, (_, state) in sides.items()}
  times = {'off': [], 'on': []}
  for i in range(warmup + n_steps):
    for name, (step_fn, _) in sides.items():
      states[name], seconds = timed(step_fn, states[name], batch, i)
      if i >= warmup:
        times[name].append(seconds)
  on_Rx2, off_Rx2 = np.array(times['on']), np.array(times['off'])  # R rounds x (wall, CPU)
  flops = {name: xla_flops(step_fn) for name, (step_fn, _) in sides.items()}
  return {'task': c.task, 'size': c.get('size'), 'batch_size': c.batch_size,
          'grad_accum': c.grad_accum, 'seq_len': c.model.get('seq_len'), 'dtype': c.dtype,
          'devices': f'{jax.device_count()} x {jax.devices()[0].device_kind}',
          'step_s_off': float(np.median(off_Rx2[:, 0])),
          'step_s_on': float(np.median(on_Rx2[:, 0])),
          'cost': float(np.median(on_Rx2[:, 0] / off_Rx2[:, 0]) - 1),
          'cost_cpu_time': float(np.median(on_Rx2[:, 1] / off_Rx2[:, 1]) - 1),
          'xla_flops_off': flops['off'], 'xla_flops_on': flops['on'],
          'cost_flops': flops['on'] / flops['off'] - 1, 'rounds': n_steps}


def main() -> None:
  p = argparse.ArgumentParser(prog='python -m benchmarks.noise_scale_cost')
  p.add_argument('--config', default='configs/lm.py:size=small')
  p.add_argument('--seq-len', type=int, default=256, help='LM only')
  p.add_argument('--batch', type=int, default=16)
  p.add_argument('--grad-accum', type=int, default=2)
  p.add_argument('--steps', type=int, default=30)
  p.add_argument('--warmup', type=int, default=3)
  args = p.parse_args()
  c = runspec.load_config(args.config)
  c.batch_size, c.grad_accum = args.batch, args.grad_accum
  if c.task == 'lm':
    c.seq_len = args.seq_len
  print(json.dumps(measure(c, args.steps, args.warmup)))


if __name__ == '__main__':
  main()
