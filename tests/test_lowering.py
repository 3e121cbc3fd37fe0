"""The real train step lowered for a GPU and a TPU on this CPU (benchmarks/lowering.py): what the
accelerators would run, checked before a run ever reaches one.

The models are the ones benchmarks/gpu.sh trains (benchmarks/gpu_shapes.py): the ~350M LM at
sequence 2048 with a 32768-token vocabulary, and DiT-B/2 on 32x32x4 latents with 1000 classes. `auto` resolves as on the platform:
bfloat16 with cuDNN's fused attention on a GPU, bfloat16 with XLA's attention on a TPU.
"""

import re

import pytest

from benchmarks import gpu_shapes, lowering


def gpu_config(task: str, **overrides):
  """gpu.sh's model of `task` ('lm' or 'diffusion'), at batch 2: lowering does not depend on it."""
  c = gpu_shapes.get_config('task=' + ('lm' if task == 'lm' else 'dit'))
  c.batch_size = 2
  c.model.update(overrides)
  return c


@pytest.fixture(scope='module')
def lowered():
  """(task, platform) -> (config, the lowered step); each lowered once, on first use."""
  cache = {}

  def get(task: str, platform: str):
    if (task, platform) not in cache:
      c = gpu_config(task)
      cache[task, platform] = c, lowering.lower_train_step(c, platform)
    return cache[task, platform]
  return get


@pytest.mark.parametrize('task, platform', [('lm', 'cuda'), ('diffusion', 'cuda'), ('lm', 'tpu'),
                                            ('diffusion', 'tpu')])
def test_the_bf16_step_donates_its_state_and_every_matmul_sums_bf16_in_f32(task, platform,
                                                                           lowered):
  c, step = lowered(task, platform)
  s = lowering.summary(step)
  assert c.dtype == 'bfloat16'
  assert s['donated_arguments'] == s['state_leaves'] > 0  # the whole state is donated
  assert s['host_callbacks'] == []
  # Constants made once per layer bloat the program: the RoPE tables (52 MB for the LM on a GPU)
  # and the causal mask (204 MB on a TPU) did; one per model, it is 2-3 MB.
  assert s['text_bytes'] < 8e6, s['text_bytes']
  # No float32 x float32 matmul (TF32 on a GPU, at half the bf16 rate), none that outputs bf16.
  assert set(s['dots_by_dtypes']) == {'bf16 x bf16 -> f32'}, s['dots_by_dtypes']


@pytest.mark.parametrize('task, mask', [('lm', 'CAUSAL'), ('diffusion', 'NO_MASK')])
def test_on_a_gpu_every_layer_runs_cudnn_fused_attention_forward_and_backward(task, mask,
                                                                               lowered):
  c, step = lowered(task, 'cuda')
  s = lowering.summary(step)
  assert c.attention == 'cudnn'
  assert (s['fused_attention_forward'], s['fused_attention_backward']) == (c.model.n_layer,) * 2
  assert s['fused_attention_masks'] == [mask]
  c, step = lowered(task, 'tpu')
  assert c.attention == 'xla' and lowering.summary(step)['fused_attention_forward'] == 0


def test_the_lm_holds_one_rope_table_not_one_per_layer(lowered):
  """Its sines and cosines, L x K/2 each: two constants, where each layer's q and k had their own
  (96 for 24 layers: 50 of the 52 MB of the lowered text)."""
  c, step = lowered('lm', 'cuda')
  table = f'tensor<{c.seq_len}x{c.model.d_model // c.model.n_head // 2}xf32>'
  assert len(re.findall(rf'stablehlo\.constant dense<[^>]*> : {re.escape(table)}',
                        step.as_text())) == 2


def test_remat_dots_runs_the_fused_forward_once(lowered):
  """model.remat=dots keeps cuDNN's forward outputs (its output and softmax statistics), so the
  backward does not run the fused forward again (layer_stack.REMAT)."""
  del lowered
  c = gpu_config('lm', n_layer=2, remat='dots')
  s = lowering.summary(lowering.lower_train_step(c, 'cuda'))
  assert (s['fused_attention_forward'], s['fused_attention_backward']) == (2, 2)
