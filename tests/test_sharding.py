import json
import os
import subprocess
import sys

import numpy as np
import pytest
from ml_collections import config_dict

from scaling import sharding
from scaling.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def sharded_run():
  out = subprocess.run([sys.executable, os.path.join(ROOT, 'tests', 'sharded_steps.py'), 'lm',
                        'size=micro'], capture_output=True, text=True, cwd=ROOT, check=True)
  return json.loads(out.stdout.strip().splitlines()[-1])


def test_eight_devices_match_one(sharded_run):
  np.testing.assert_allclose(sharded_run['losses8'], sharded_run['losses1'], rtol=1e-4)
  assert sharded_run['losses8'][-1] < sharded_run['losses8'][0]


def test_params_and_adam_moments_are_sharded(sharded_run):
  # micro: d_model 64, n_head 2, d_ff 256, vocab 256; embed -> fsdp (2), heads/mlp/vocab -> tensor (2).
  params = sharded_run['params']
  mlp_in = "['blocks'][0]['mlp']['w_in']"
  assert params[mlp_in] == [[32, 128]] * 8
  assert params["['blocks'][0]['attn']['wq']"] == [[32, 1, 32]] * 8
  assert params["['embed']"] == [[128, 32]] * 8
  moments = [k for k in sharded_run['opt'] if k.endswith(mlp_in)]
  assert len(moments) == 2  # Adam mu and nu, both sharded like the parameter
  for k in moments:
    assert sharded_run['opt'][k] == [[32, 128]] * 8


def test_mesh_shape_fills_remaining_devices():
  cfg = config_dict.ConfigDict(dict(data=2, fsdp=-1, tensor=2))
  assert sharding.mesh_shape(cfg, 16) == (2, 4, 2)


def test_mesh_shape_rejects_wrong_product():
  cfg = config_dict.ConfigDict(dict(data=2, fsdp=2, tensor=2))
  with pytest.raises(ConfigError, match='mesh'):
    sharding.mesh_shape(cfg, 4)


def test_logical_names_map_to_mesh_axes():
  spec = sharding.mesh_spec(('embed', 'heads', 'kv'))
  assert tuple(spec) == ('fsdp', 'tensor', None)
