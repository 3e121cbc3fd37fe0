"""Where the time of one train step goes: XLA's own profile of the compiled step, op by op, summed
into the rows of docs/performance.md.

  python -m benchmarks.profile_step                      # the LM shape compared with peers
  python -m benchmarks.profile_step --config.dtype=bfloat16 --top=15

It traces `--steps` steps with jax.profiler (a Perfetto trace), matches every executed op to its
instruction in the compiled HLO, and sorts it by what the instruction computes:
- its phase, from the op names JAX gives it: forward (`jvp(...)`), backward (`transpose(jvp)`),
  or the optimizer update (neither);
- its layer, from the model's named scopes (attention, mlp, norm, embed, unembed; none: the loss);
- its kind: a matmul (a dot, or a fusion around one; in attention, QK^T and PV), a layout change
  (only copies and transposes), or else by its layer (in the MLP: the activation and what is
  fused with it; in attention: softmax, mask and RoPE; exp or log outside the model: the loss).
Shares are of the summed op time. XLA:CPU runs independent ops side by side on the cores, so that
sum can exceed the step's wall time; where it is less, the rest is the runtime between ops.
Takes the same flags as benchmarks.train_throughput. `--from_dir=DIR` tables a trace written
before by `benchmarks.train_throughput --profile_dir=DIR` (benchmarks/gpu.sh keeps the GPU's).
"""

import collections
import glob
import gzip
import json
import os
import re
import tempfile

import jax
import numpy as np
from absl import app, flags

from benchmarks import train_throughput
from scaling import precision, sharding, steps
from scaling.data import synthetic
from scaling.tasks import TASKS

_TOP = flags.DEFINE_integer('top', 0, 'also print the N slowest ops')
_FROM_DIR = flags.DEFINE_string('from_dir', '', 'table this saved trace instead of running a step')
SCOPES = ('attention', 'mlp', 'norm', 'embed', 'unembed')
# QK^T and PV in jax.nn.dot_product_attention, and in scaling/models/attention.py (with the key
# and value gradients of its bf16 backward, scaling/models/matmul.py)
ATTENTION_EINSUMS = ('BTNH,BSNH', 'BNTS,BSNH', 'bqhk,bshk', 'bhqs,bshk', 'bqhk,bhqs')
_INSTRUCTION = re.compile(r'^\s*(?:ROOT )?%(\S+) = (\S+) (\w+)\(')
_COMPUTATION = re.compile(r'^%(\S+) .*\{$')
_CALLS = re.compile(r'calls=%([\w.\-]+)')
_OP_NAME = re.compile(r'op_name="([^"]*)"')


def parse_hlo(text: str) -> tuple[dict, dict]:
  """({instruction: its line} of every computation, {computation: its lines})."""
  instructions, computations, current = {}, collections.defaultdict(list), None
  for line in text.splitlines():
    if (m := _COMPUTATION.match(line)) or line.startswith('ENTRY'):
      current = m.group(1) if m else 'ENTRY'
      continue
    if (m := _INSTRUCTION.match(line)):
      instructions[m.group(1)] = line
      computations[current].append(line)
  return instructions, computations


def classify(line: str, computations: dict) -> str:
  """The row of the per-op table that one HLO instruction belongs to."""
  body = [line]
  for called in _CALLS.findall(line):
    body += computations.get(called, [])
  names = [n for l in body for n in _OP_NAME.findall(l)]
  ops = {m.group(3) for l in body[1:] if (m := _INSTRUCTION.match(l))}
  if names and not any('jvp(' in n for n in names):
    return 'optimizer update'
  phase = 'backward' if any('transpose(jvp(' in n for n in names) else 'forward'
  scopes = collections.Counter(s for n in names for s in SCOPES
                               if f'/{s}/' in n or n.endswith(f'/{s}') or f'({s})' in n)
  scope = scopes.most_common(1)[0][0] if scopes else None  # a fusion can span layers
  if _INSTRUCTION.match(line).group(3) == 'dot' or 'dot' in ops or '__ynn_fusion' in line:
    kind = ('attention matmuls' if any(e in n for e in ATTENTION_EINSUMS for n in names)
            else 'dense matmuls')
  elif ops and ops <= {'copy', 'transpose', 'bitcast', 'parameter', 'reshape'}:
    kind = 'layout copies'
  elif scope == 'mlp':
    kind = 'GELU / SiLU'
  elif scope == 'norm':
    kind = 'RMSNorm'
  elif scope == 'attention':
    kind = 'attention softmax, mask and RoPE'
  elif 'exponential' in ops or 'log' in ops:
    kind = 'loss (softmax cross-entropy)'
  else:
    kind = 'other elementwise (residual, embedding)'
  return f'{kind} ({phase})'


def profile(c, n_steps: int) -> tuple[dict, float, list]:
  """({row: seconds per step}, wall seconds per step, [(seconds, op, row)] slowest first)."""
  # No persistent compilation cache: an executable from it may carry no op names.
  precision.resolve(c)
  task = TASKS[c.task]
  mesh = sharding.make_mesh(c.mesh)
  fns = steps.build(c, task, mesh)
  batch = sharding.global_batch(synthetic.batch(c, np.random.default_rng(0)), mesh)
  state = fns.init()
  compiled = fns.train_step.lower(state, batch, 0).compile()
  for i in range(3):
    state, metrics = compiled(state, batch, i)
  jax.block_until_ready(metrics)
  with tempfile.TemporaryDirectory() as out:
    train_throughput.trace(compiled, state, [batch], out, n_steps)
    return rows_of_trace(out)


def rows_of_trace(out: str) -> tuple[dict, float, list]:
  """profile()'s tuple, from a folder that train_throughput.trace wrote."""
  with open(os.path.join(out, train_throughput.HLO_FILE), encoding='utf-8') as f:
    instructions, computations = parse_hlo(f.read())
  with open(os.path.join(out, train_throughput.TRACE_FILE), encoding='utf-8') as f:
    traced = json.load(f)
  trace = glob.glob(os.path.join(out, '**', '*.trace.json.gz'), recursive=True)[0]
  with gzip.open(trace) as f:
    events = json.load(f)['traceEvents']
  per_op = collections.Counter()
  for e in events:
    if e.get('ph') == 'X' and e.get('name') in instructions:
      per_op[e['name']] += e['dur'] * 1e-6 / traced['steps']
  rows = collections.Counter()
  slowest = []
  for op, seconds in per_op.items():
    row = classify(instructions[op], computations)
    rows[row] += seconds
    slowest.append((seconds, op, row))
  return dict(rows), traced['step_s'], sorted(slowest, reverse=True)


def main(argv) -> None:
  del argv
  c = train_throughput._CONFIG.value  # pylint: disable=protected-access
  if _FROM_DIR.value:
    rows, wall, slowest = rows_of_trace(_FROM_DIR.value)
  else:
    rows, wall, slowest = profile(c, train_throughput._STEPS.value)  # pylint: disable=protected-access
  if train_throughput._JSON.value:  # pylint: disable=protected-access
    print(json.dumps({'step_s': wall, 'op_s': sum(rows.values()), 'rows_s': rows}))
    return
  total = sum(rows.values())
  what = _FROM_DIR.value or f'{c.task} {c.size}, {c.dtype}, batch {c.batch_size}'
  print(f'{what}: {wall * 1e3:.1f} ms per step wall, {total * 1e3:.1f} ms of ops')
  print(f'{"row":52s} {"ms/step":>9s} {"share":>6s}')
  for row, seconds in sorted(rows.items(), key=lambda kv: -kv[1]):
    print(f'{row:52s} {seconds * 1e3:9.2f} {seconds / total:6.1%}')
  for seconds, op, row in slowest[:_TOP.value]:
    print(f'  {seconds * 1e3:8.2f} ms  {op:40s} {row}')


if __name__ == '__main__':
  app.run(main)  # train_throughput, imported above, has put the default --config in sys.argv
