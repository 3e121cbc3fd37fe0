"""The two models benchmarks/gpu.sh times on one GPU, as a config file for `--config`:

  --config=benchmarks/gpu_shapes.py:task=lm      # the ~350M LM, sequence 2048, batch 16
  --config=benchmarks/gpu_shapes.py:task=dit     # DiT-B/2 on 32x32x4 latents, batch 256
  --config=benchmarks/gpu_shapes.py:task=lm,dry_run=true   # the same code at tiny shapes

The LM is configs/lm.py:size=m300 (24 layers, d_model 1024, 16 heads, d_ff 4096) with a
32768-token vocabulary, a subword vocabulary of LLaMA's size rounded to a power of two so the
logits matmul tiles evenly: 369M parameters, 302M non-embedding. The embedded corpus's 256-byte
vocabulary would understate the output layer's share of a real LM's FLOPs. Its batch of 16 x 2048
tokens keeps the activations (about 1.1 MB per token without remat: 32 KB per layer in bf16,
and the float32 logits and their gradient) and the float32 parameters and Adam state (6 GB)
within an H100's 80 GB. The DiT is configs/dit.py:size=B/2 on the latents of 256 x 256 images
with ImageNet's 1000 classes, DiT's own batch of 256. Both compute in bfloat16 on one device;
`attention` is left to `auto` (cuDNN's fused kernel on a GPU, scaling/precision.py).
tests/test_lowering.py lowers these same steps for a GPU and a TPU.
"""

from ml_collections import config_dict

from configs import common, dit, lm


def get_config(arg: str = 'task=lm') -> config_dict.ConfigDict:
  args = common.parse_arg(arg, task='lm', dry_run=False)
  tiny = args['dry_run']
  if args['task'] == 'lm':
    c = lm.get_config('size=nano' if tiny else 'size=m300')
    c.seq_len = 32 if tiny else 2048
    c.model.vocab_size = 256 if tiny else 32768
    c.batch_size = 8 if tiny else 16
  elif args['task'] == 'dit':
    c = dit.get_config('size=tiny' if tiny else 'size=B/2')
    c.model.image_size = 8 if tiny else 32
    c.model.channels, c.model.num_classes = 4, 1000
    c.batch_size = 16 if tiny else 256
  else:
    raise ValueError(f'task: unknown {args["task"]!r}; use lm or dit')
  c.dtype = 'bfloat16'
  c.mesh = config_dict.ConfigDict(dict(data=1, fsdp=1, tensor=1))  # one device
  return c
