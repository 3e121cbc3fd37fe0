"""μP learning-rate transfer: the peak learning rate on a grid of factors of 2, at 3 widths, for sp
and mup (docs/mup.md).

Study: does the best learning rate move with width? Each run trains a 2-layer model of width
d_model in WIDTHS (fixed head count, so the head width grows) for STEPS steps on the embedded data
(the stdlib bytes for the LM, the 8x8 digits for the DiT); under mup, base_width is the narrowest.

Expected result (Tensor Programs V): under mup the best learning rate is the same at every width
(within one grid step) and the loss at it falls with width; under sp the optimum moves down as the
width grows. Run time: 2 parameterisations x 3 widths x 9 learning rates = 54 short runs; see
docs/mup.md for the measured one.

  python -m experiments.mup_lr_transfer --task=lm
  python -m experiments.sweep --sweep=configs/sweeps/mup_lr_transfer.py:task=lm \
      --outdir=runs/mup_lr_transfer/lm/runs

Arguments: `task=lm|dit` (default lm), `steps=N` (default 300); a narrower study (a longer
horizon at a few learning rates) takes `only=sp|mup` and the grid's exponents `lowest=-13`,
`highest=-5`.
"""

from configs import common

WIDTHS = (64, 128, 256)
DEFAULTS = dict(task='lm', steps=300, only='', lowest=-13, highest=-5)  # 2^-13..2^-5: both ends
PARAMETERIZATIONS = ('sp', 'mup')
CONFIGS = {'lm': 'configs/lm.py:size=nano', 'dit': 'configs/dit.py:size=tiny'}
TRAINING = {
    'lm': {'seq_len': 64, 'batch_size': 16, 'eval_batches': 8, 'model.n_layer': 2,
           'model.n_head': 2},
    # 5 x 32 eval examples: the 180 held-out digits hold no more without repeating an image
    'dit': {'batch_size': 32, 'eval_batches': 5, 'model.n_layer': 2, 'model.n_head': 4},
}


def run_name(parameterization: str, width: int, lr: float) -> str:
  return f'{parameterization}-d{width}-lr{lr:.3g}'


def grid(args: dict) -> tuple[tuple[str, ...], tuple[float, ...]]:
  """The parameterisations and learning rates that `args` (parsed DEFAULTS) ask for."""
  if args['only'] not in ('', *PARAMETERIZATIONS):
    raise ValueError(f'only: unknown {args["only"]!r}; use sp or mup, or leave it out for both')
  if args['lowest'] > args['highest']:
    raise ValueError(f'lowest: {args["lowest"]} is above highest={args["highest"]}; '
                     'they are the exponents of the learning-rate grid, lowest first')
  params = (args['only'],) if args['only'] else PARAMETERIZATIONS
  return params, tuple(2.0**k for k in range(args['lowest'], args['highest'] + 1))


def get_sweep(arg: str = '') -> dict:
  args = common.parse_arg(arg, **DEFAULTS)
  if args['task'] not in CONFIGS:
    raise ValueError(f'task: unknown {args["task"]!r}; use one of {", ".join(CONFIGS)}')
  params, lrs = grid(args)
  shared = {**TRAINING[args['task']], 'steps': args['steps'], 'warmup_steps': args['steps'] // 10,
            'eval_every': args['steps'], 'log_every': 50,
            'checkpoint_every': args['steps'], 'base_width': WIDTHS[0]}
  return {'name': f'mup_lr_transfer_{args["task"]}', 'runs': [
      {'name': run_name(p, w, lr), 'config': CONFIGS[args['task']],
       'overrides': {**shared, 'parameterization': p, 'model.d_model': w, 'lr': lr}}
      for p in params for w in WIDTHS for lr in lrs]}
