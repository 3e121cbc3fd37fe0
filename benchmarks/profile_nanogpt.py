"""Where the time of nanoGPT's train step goes on this machine, in the rows of
benchmarks.profile_step, so the two profiles of docs/performance.md can be read side by side.

  $PEER/venv-torch/bin/python benchmarks/profile_nanogpt.py --nanogpt-src $PEER/nanogpt

Run it with an interpreter that has torch (not a dependency of this project), on a snapshot of
karpathy/nanoGPT (../shared/bench/README.md says how to get one): it imports nanoGPT's own
model.py and configure_optimizers and times its train.py step (forward with targets, backward,
gradient clipping at 1.0, AdamW, zero_grad) on random tokens, under torch.profiler. Each
operator's own CPU time (not its children's) is put in a phase, from the operators around it
(under autograd's engine: backward; under Optimizer.step: the optimizer; clip_grad_norm_: its
own row), and a kind, from its name. The shape flags default to the 3.3M shape.
"""

import argparse
import collections
import contextlib
import importlib.util
import os
import sys

KINDS = (  # (kind, operator-name fragments), first match wins
    ('attention (fused SDPA)', ('scaled_dot_product', 'flash_attention')),
    ('matmul', ('aten::mm', 'aten::addmm', 'aten::bmm', 'aten::linear', 'aten::matmul')),
    ('softmax', ('softmax',)),
    ('layer norm', ('layer_norm',)),
    ('GELU', ('gelu',)),
    ('embedding', ('embedding', 'index_select', 'aten::index')),
    ('loss', ('nll_loss', 'cross_entropy')),
)


def parse_args() -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--nanogpt-src', required=True, help="folder holding nanoGPT's model.py")
  p.add_argument('--L', type=int, default=4)
  p.add_argument('--D', type=int, default=256)
  p.add_argument('--H', type=int, default=4)
  p.add_argument('--V', type=int, default=256)
  p.add_argument('--seq', type=int, default=256)
  p.add_argument('--batch', type=int, default=16)
  p.add_argument('--steps', type=int, default=5, help='profiled steps, after 3 untimed ones')
  a = p.parse_args()
  if not os.path.isfile(os.path.join(a.nanogpt_src, 'model.py')):
    p.error(f"--nanogpt-src: no model.py in {a.nanogpt_src}; point it at a nanoGPT snapshot")
  return a


def kind(name: str) -> str:
  return next((k for k, keys in KINDS if any(f in name for f in keys)), 'elementwise and copies')


def phase(event) -> str:
  parent = event.cpu_parent
  while parent is not None:
    if parent.name.startswith('Optimizer.step'):
      return 'optimizer'
    if parent.name == 'clip_grad_norm':
      return 'gradient clipping'
    if parent.name.startswith('autograd::engine'):
      return 'backward'
    parent = parent.cpu_parent
  return 'forward'


def main() -> int:
  a = parse_args()
  import torch  # pylint: disable=import-outside-toplevel
  spec = importlib.util.spec_from_file_location('nanogpt_model', os.path.join(a.nanogpt_src,
                                                                             'model.py'))
  model_lib = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(model_lib)
  torch.manual_seed(0)
  with contextlib.redirect_stdout(sys.stderr):  # nanoGPT prints its parameter count
    model = model_lib.GPT(model_lib.GPTConfig(block_size=a.seq, vocab_size=a.V, n_layer=a.L,
                                              n_head=a.H, n_embd=a.D, dropout=0.0, bias=False))
    opt = model.configure_optimizers(1e-1, 6e-4, (0.9, 0.95), 'cpu')  # train.py's defaults
  data = torch.randint(a.V, (3 + a.steps, a.batch, a.seq + 1))

  def step(tokens):
    with torch.profiler.record_function('train_step'):
      _, loss = model(tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous())
      loss.backward()
      with torch.profiler.record_function('clip_grad_norm'):  # it names no range of its own
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
      opt.step()
      opt.zero_grad(set_to_none=True)

  for tokens in data[:3]:
    step(tokens)
  with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
    for tokens in data[3:]:
      step(tokens)
  rows = collections.defaultdict(float)
  step_us = 0.0
  for e in prof.events():
    if e.name == 'train_step':
      step_us += e.cpu_time_total
    elif e.name != 'clip_grad_norm' and not e.name.startswith(('autograd::engine', 'Optimizer.')):
      rows[(phase(e), kind(e.name))] += e.self_cpu_time_total
  total = sum(rows.values())
  print(f'nanoGPT {a.L} x {a.D}, seq {a.seq}, batch {a.batch}, torch {torch.__version__}, '
        f'{torch.get_num_threads()} threads: {step_us / a.steps / 1e3:,.0f} ms per step wall, '
        f'{total / a.steps / 1e3:,.0f} ms of operators')
  print('| phase | kind | ms/step | share |\n|---|---|---|---|')
  for (ph, k), us in sorted(rows.items(), key=lambda kv: -kv[1]):
    print(f'| {ph} | {k} | {us / a.steps / 1e3:,.1f} | {us / total:.1%} |')
  return 0


if __name__ == '__main__':
  sys.exit(main())
