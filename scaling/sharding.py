"""The device mesh (data, fsdp, tensor) and the rules that map logical axis names onto it."""

import math

import jax
import numpy as np
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
from ml_collections import config_dict

from scaling.errors import ConfigError

AXES = ('data', 'fsdp', 'tensor')

# Logical name -> mesh axes. Weights are split over fsdp along the model width and over tensor
# along heads / MLP hidden / vocab; the batch is split over data and fsdp.
RULES = {
    'batch': ('data', 'fsdp'),
    'embed': 'fsdp',
    'mlp': 'tensor',
    'heads': 'tensor',
    'vocab': 'tensor',
    'kv': None,
    'layers': None,  # the stacked blocks of model.scan_layers: each device holds every layer
}


def mesh_shape(mesh_cfg: config_dict.ConfigDict, n_devices: int) -> tuple[int, int, int]:
  sizes = [mesh_cfg[a] for a in AXES]
  if sizes.count(-1) > 1:
    raise ConfigError('mesh: at most one of mesh.data/fsdp/tensor may be -1 (the remaining devices)')
  known = math.prod(s for s in sizes if s != -1)
  if -1 in sizes:
    if known < 1 or n_devices % known:
      raise ConfigError(f'mesh: the fixed mesh axes multiply to {known}, which does not divide the '
                        f'{n_devices} devices; change --config.mesh.data/fsdp/tensor')
    sizes[sizes.index(-1)] = n_devices // known
  if math.prod(sizes) != n_devices:
    raise ConfigError(f'mesh: data*fsdp*tensor = {math.prod(sizes)} but there are {n_devices} '
                      'devices; set --config.mesh.data/fsdp/tensor so their product matches '
                      '(-1 takes the remaining devices)')
  return tuple(sizes)


def make_mesh(mesh_cfg: config_dict.ConfigDict) -> jax.sharding.Mesh:
  shape = mesh_shape(mesh_cfg, jax.device_count())
  # Auto axes: shardings come from the rules via jit in/out shardings, not from explicit types.
  return jax.make_mesh(shape, AXES, axis_types=(AxisType.Auto,) * len(AXES))


def mesh_spec(logical: P | tuple | None) -> P:
  if logical is None:
    return P()
  return P(*(None if name is None else RULES[name] for name in logical))


def logical_to_sharding(logical_tree, mesh: jax.sharding.Mesh):
  """A pytree of logical PartitionSpecs -> the same pytree of NamedShardings."""
  return jax.tree.map(lambda spec: NamedSharding(mesh, mesh_spec(spec)), logical_tree,
                      is_leaf=lambda x: isinstance(x, P))


def batch_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(RULES['batch']))


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def global_batch(local_batch: dict[str, np.ndarray], mesh: jax.sharding.Mesh) -> dict[str, jax.Array]:
  """Assemble each process's rows into global arrays sharded over (data, fsdp)."""
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, v) for k, v in local_batch.items()}
