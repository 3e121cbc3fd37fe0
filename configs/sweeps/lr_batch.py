"""Learning rate x batch size at several model sizes and token budgets: the grid behind the
learning-rate and batch-size laws (DeepSeek LLM 2024 §3.1, Step Law 2025, Porian et al. 2024 §4).

Study: for each (N, D) cell, a size of the CPU ladder (configs/ladder.py: 4.9K, 11K and 26K
parameters, embeddings included) trained on exactly D tokens (bytes: the byte-level tokenizer;
2^18 or 2^20), the final eval loss over a grid of 5 peak learning rates and 4 batch sizes
(factors of 2; a batch counts sequences of 64 tokens): 3 x 2 cells, 120 runs. The steps are
D / (batch x 64), so every run of a cell sees the same number of tokens; each uses a cosine
schedule with a warmup of 5% of its steps. Every run evaluates the same 256 held-out windows
(eval_batches = 256 / batch), so the loss differences inside a cell are not eval-set noise. The
runs within 0.25% of each cell's best loss feed the laws log η* = c + a_N log N + a_D log D and
log B* = c' + b_D log D:

  python -m experiments.sweep --sweep=configs/sweeps/lr_batch.py --outdir=runs/lr_batch/runs \
      --max-parallel=2
  python -m analysis.fit --runs=runs/lr_batch/runs --law=hparams --out=runs/lr_batch

Expected result: an optimum inside the grid in each cell, the optimal batch growing with D; at
these sizes (5K to 26K parameters, 0.26M to 1M tokens) the laws are a test of the method, far
from the regime of the published ones. Run time (about 35 minutes on 2 busy cores; dominated by
the 120 process starts and the small-batch runs' many short steps) and the fitted law:
docs/analysis.md.

Arguments: `size=NAME` (n5k, n11k or n26k) and `tokens=D` (262144 or 1048576) pick part of the
grid, as a pilot or a test does; each part is its own study and needs its own --outdir.
"""

import math

from configs import common
from configs import ladder

# Each size's learning rates and each budget's batch sizes are a window of 5 and 4 factors of 2
# around the optimum a pilot on 2 cores found (n5k about 0.06, n26k about 0.01; 2 to 4 sequences
# at D = 2^19): the optimum moves to smaller learning rates with N and to larger batches with D.
LEARNING_RATES = {'n5k': (2**-6, 2**-2), 'n11k': (2**-7, 2**-3), 'n26k': (2**-8, 2**-4)}
BATCHES = {2**18: (1, 8), 2**20: (2, 16)}  # D per run (tokens): sequences of SEQ_LEN tokens
SEQ_LEN = 64
EVAL_WINDOWS = 256  # held-out windows behind every run's eval loss
WARMUP_FRACTION = 0.05


def run_name(size: str, tokens: int, lr: float, batch: int) -> str:
  return f'{size}-D{tokens}-lr{lr:.4g}-b{batch}'


def overrides(shape: dict, tokens: int, lr: float, batch: int) -> dict:
  steps = tokens // (batch * SEQ_LEN)
  return {**ladder.CPU_LM_TRAINING, **shape, 'seq_len': SEQ_LEN, 'batch_size': batch, 'lr': lr,
          'steps': steps, 'warmup_steps': max(1, round(WARMUP_FRACTION * steps)),
          'eval_batches': EVAL_WINDOWS // batch, 'eval_every': steps, 'checkpoint_every': steps,
          'log_every': min(50, steps)}


def factors_of_two(lowest: float, highest: float) -> list[float]:
  return [lowest * 2**k for k in range(round(math.log2(highest / lowest)) + 1)]


def get_sweep(arg: str = '') -> dict:
  args = common.parse_arg(arg, size='', tokens=0)
  if args['size'] and args['size'] not in LEARNING_RATES:
    raise ValueError(f'size: unknown {args["size"]!r}; use one of {", ".join(LEARNING_RATES)}')
  if args['tokens'] and args['tokens'] not in BATCHES:
    raise ValueError(f'tokens: {args["tokens"]} is not one of {", ".join(map(str, BATCHES))}')
  sizes = (args['size'],) if args['size'] else tuple(LEARNING_RATES)
  budgets = (args['tokens'],) if args['tokens'] else tuple(BATCHES)
  suffix = ''.join(f'_{k}{v}' for k, v in args.items() if v)
  return {'name': f'lr_batch{suffix}', 'runs': [
      {'name': run_name(size, tokens, lr, batch), 'config': ladder.CPU_LM,
       'overrides': overrides(ladder.CPU_LM_SHAPES[size], tokens, lr, batch)}
      for size in sizes for tokens in budgets for lr in factors_of_two(*LEARNING_RATES[size])
      for batch in factors_of_two(*BATCHES[tokens])]}
