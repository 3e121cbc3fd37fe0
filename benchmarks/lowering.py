"""The real train step lowered for an accelerator on a host without one, and what its program
holds: fused attention calls, donated state, host callbacks, the dtypes of every matmul, size.

  python -m benchmarks.lowering --platform=cuda \
      --config=configs/lm.py:size=m300 --config.seq_len=2048 --config.model.vocab_size=32768

Lowering (jit(...).trace(...).lower(lowering_platforms=...)) needs no device of that platform:
it is what tests/test_lowering.py checks in CI for the GPU and the TPU before a run ever reaches
one. `auto` dtype and attention resolve as on that platform (bf16 and cuDNN on a GPU). Takes the
config flags of benchmarks.train_throughput; prints one JSON line.
"""

import collections
import contextlib
import json
import re

import jax
import numpy as np
from absl import app, flags
from jax._src.cudnn import fused_attention_stablehlo  # the module whose check is bypassed below

from scaling import precision, sharding, steps
from scaling.data import synthetic
from scaling.tasks import TASKS

# A cuDNN version new enough for every fused-attention shape these models use (9.10).
PRETENDED_CUDNN_VERSION = 91000
# jax's lowering platforms, and the platform names of scaling/precision.py's choices.
PLATFORMS = {'cuda': 'gpu', 'rocm': 'gpu', 'tpu': 'tpu', 'cpu': 'cpu'}
_FUSED_ATTENTION = re.compile(r'custom_call @__cudnn\$(fmha\w*)\((.*)$', re.M)
_MASK_TYPE = re.compile(r'mask_type\\22: \\22(\w+)\\22')
_TENSOR = r'tensor<(?:[0-9?]+x)*(\w+)>'  # its element type
_DOT = re.compile(rf'stablehlo\.dot_general .*: \({_TENSOR}, {_TENSOR}\) -> {_TENSOR}')
_CUSTOM_CALL = re.compile(r'custom_call @([\w$.]+)')
_DONATED = re.compile(r'tf\.aliasing_output|jax\.buffer_donor')
_MAIN_ARGS = re.compile(r'func\.func public @main\((.*?)\) ->', re.S)


@contextlib.contextmanager
def cudnn_version_check_bypassed(version: int = PRETENDED_CUDNN_VERSION):
  """Lets jax.nn.dot_product_attention(implementation='cudnn') trace on a host without cuDNN.

  Why: jax asks the installed CUDA plugin for cuDNN's version while it traces the call, to pick
  what the fused kernel supports, and raises 'cuDNN is not detected' where there is none, even
  when the program is only lowered for a GPU and never runs here. For as long as this lasts, jax
  is told that cuDNN `version` is installed. Only for lowering: the same function in jax 0.10 and
  0.11 (jax/_src/cudnn/fused_attention_stablehlo.py), replaced and restored here alone.
  """
  check = fused_attention_stablehlo.check_cudnn_version
  fused_attention_stablehlo.check_cudnn_version = lambda: version
  try:
    yield
  finally:
    fused_attention_stablehlo.check_cudnn_version = check


def lower_train_step(c, platform: str) -> jax.stages.Lowered:
  """The train step of config c, lowered for `platform` (one of PLATFORMS) with the abstract
  state: nothing is allocated. Resolves c's `auto` dtype and attention for that platform."""
  precision.resolve(c, platform=PLATFORMS[platform])
  fns = steps.build(c, TASKS[c.task], sharding.make_mesh(c.mesh))
  batch = synthetic.batch(c, np.random.default_rng(0))
  with cudnn_version_check_bypassed():
    return fns.train_step.trace(fns.abstract_state, batch, 0).lower(lowering_platforms=(platform,))


def summary(lowered: jax.stages.Lowered) -> dict:
  """What the lowered program holds, read from its StableHLO text."""
  text = lowered.as_text()
  fused = [(name, _MASK_TYPE.search(rest)) for name, rest in _FUSED_ATTENTION.findall(text)]
  main_args = _MAIN_ARGS.search(text).group(1)
  n_state = len(jax.tree.leaves(lowered.args_info[0][0]))
  return {
      'fused_attention_forward': sum(not n.endswith('Backward') for n, _ in fused),
      'fused_attention_backward': sum(n.endswith('Backward') for n, _ in fused),
      'fused_attention_masks': sorted({m.group(1) if m else 'NONE' for _, m in fused}),
      'state_leaves': n_state,
      'donated_arguments': len(_DONATED.findall(main_args)),
      'host_callbacks': sorted({t for t in _CUSTOM_CALL.findall(text) if 'callback' in t}),
      'dots_by_dtypes': dots_by_dtypes(text),
      'text_bytes': len(text),
  }


def dots_by_dtypes(text: str) -> dict[str, int]:
  """{'bf16 x bf16 -> f32': count, ...}: the matmuls of a StableHLO text by their element types."""
  return dict(collections.Counter(f'{a} x {b} -> {out}' for a, b, out in _DOT.findall(text)))


def main(argv) -> None:
  del argv
  c = train_throughput._CONFIG.value  # pylint: disable=protected-access
  lowered = lower_train_step(c, _PLATFORM.value)
  print(json.dumps({'platform': _PLATFORM.value, 'task': c.task, 'dtype': c.dtype,
                    'attention': c.attention, **summary(lowered)}))


if __name__ == '__main__':
  # Only as a command: train_throughput defines --config (its default set in sys.argv).
  from benchmarks import train_throughput  # pylint: disable=g-import-not-at-top
  _PLATFORM = flags.DEFINE_enum('platform', 'cuda', list(PLATFORMS), 'the platform to lower for')
  app.run(main)
