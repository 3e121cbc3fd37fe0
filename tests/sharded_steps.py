"""Run in a subprocess with 8 fake CPU devices: 10 steps of a task on a (2, 2, 2) mesh and on 1 device.

Prints one JSON line: the losses of both runs and the per-device shard shapes of the sharded run.
"""

import importlib
import json
import os
import sys

os.environ['XLA_FLAGS'] = '--xla_force_host_platform_device_count=8'

import jax  # noqa: E402  (after XLA_FLAGS)
import numpy as np  # noqa: E402
from jax.sharding import AxisType, Mesh  # noqa: E402

from scaling import sharding, steps  # noqa: E402
from scaling.tasks import TASKS  # noqa: E402


def losses_and_state(c, mesh, n_steps: int):
  task = TASKS[c.task]
  fns = steps.build(c, task, mesh)
  data = task.make_data(c, 0, 1)
  state, losses = fns.init(), []
  for step in range(n_steps):
    state, metrics = fns.train_step(state, sharding.global_batch(data.train_batch(step), mesh), step)
    losses.append(float(metrics['train_loss']))
  return losses, state


def shard_shapes(tree) -> dict:
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {jax.tree_util.keystr(p): [list(s.data.shape) for s in x.addressable_shards]
          for p, x in flat}


def main(config_module: str, config_arg: str) -> None:
  """e.g. `python tests/sharded_steps.py lm size=micro`."""
  c = importlib.import_module(f'configs.{config_module}').get_config(config_arg)
  c.steps, c.warmup_steps = 10, 2
  steps.enable_compilation_cache()
  auto = (AxisType.Auto,) * 3
  mesh8 = jax.make_mesh((2, 2, 2), sharding.AXES, axis_types=auto)
  mesh1 = Mesh(np.array(jax.devices()[:1]).reshape(1, 1, 1), sharding.AXES, axis_types=auto)
  losses8, state8 = losses_and_state(c, mesh8, 10)
  losses1, _ = losses_and_state(c, mesh1, 10)
  print(json.dumps({'losses8': losses8, 'losses1': losses1,
                    'params': shard_shapes(state8['params']),
                    'opt': shard_shapes(state8['opt'])}))


if __name__ == '__main__':
  main(*sys.argv[1:])
