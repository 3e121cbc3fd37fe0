"""How an LM starts: the step-0 eval loss per seed, and the RMS of the residual stream's parts.

  python -m experiments.init_report [--size=small] [--seeds=3] [--seq-len=256]

Prints, for each seed, the held-out loss of the freshly initialised model on the config's eval
batches (ln V is what a uniform prediction scores) beside the RMS of the token embeddings and of
the first block's attention output at the same tokens. docs/model.md quotes its output.
"""

import math

import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from analysis import cli
from configs import lm
from scaling.tasks import TASKS


def _parser() -> cli.Parser:
  p = cli.Parser(description=__doc__.split('\n')[0])
  p.add_argument('--size', default='small', choices=list(lm.SIZES))
  p.add_argument('--seeds', type=int, default=3)
  p.add_argument('--seq-len', type=int, default=256)
  return p


def rms(x_BxLxD) -> float:
  return float(jnp.sqrt(jnp.mean(jnp.square(x_BxLxD))))


def main(argv: list[str] | None = None) -> None:
  args = _parser().parse_args(argv)
  c = lm.get_config(f'size={args.size}')
  c.seq_len = args.seq_len
  task = TASKS['lm']
  batches = task.make_data(c, 0, 1).eval_batches()
  print(f'{args.size}: ln V = {math.log(c.model.vocab_size):.3f} nats')
  for seed in range(args.seeds):
    model = task.make_model(c, nnx.Rngs(seed))
    losses = [float(optax.softmax_cross_entropy_with_integer_labels(
        model(jnp.asarray(b['inputs'])), jnp.asarray(b['targets'])).mean()) for b in batches]
    x_BxLxD = model.embed[...][jnp.asarray(batches[0]['inputs'])]
    block = model.blocks[0]
    attn_BxLxD = block.attn(block.attn_norm(x_BxLxD))
    print(f'seed {seed}: step-0 eval loss {np.mean(losses):.3f}  embedding RMS {rms(x_BxLxD):.3f}'
          f'  first attention output RMS {rms(attn_BxLxD):.3f}')


if __name__ == '__main__':
  cli.run(main)
