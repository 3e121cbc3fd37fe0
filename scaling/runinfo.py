"""The environment half of run.json: hardware, mesh, versions, code commit, dataset and seed."""

import os
import platform
import subprocess

import flax
import jax
import optax

from scaling.data import Data


def git_commit() -> str | None:
  here = os.path.dirname(os.path.abspath(__file__))
  try:
    out = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=here, capture_output=True, text=True,
                         timeout=10)
  except (OSError, subprocess.TimeoutExpired):
    return None
  return out.stdout.strip() if out.returncode == 0 else None


def describe(c, mesh: jax.sharding.Mesh, data: Data) -> dict:
  return {
      'task': c.task,
      'steps': c.steps,
      'seed': c.seed,
      'mesh': {name: int(size) for name, size in mesh.shape.items()},
      'device_kind': jax.devices()[0].device_kind,
      'device_count': jax.device_count(),
      'process_count': jax.process_count(),
      'versions': {'jax': jax.__version__, 'flax': flax.__version__, 'optax': optax.__version__,
                   'python': platform.python_version()},
      'git_commit': git_commit(),
      'dataset': {'name': data.name, 'fingerprint': data.fingerprint},
  }
