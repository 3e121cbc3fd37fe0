"""A fixed tokens-per-parameter ladder: the 7 CPU byte-level LMs of configs/ladder.py, from
4.9K to 131K parameters, each trained on `ratio` tokens per parameter (default 20, Chinchilla's
rule of thumb).

Study: loss against N (and against compute) along a line of constant D/N, the Kaplan-style L(N)
of a fixed recipe. Fit it with a one-variable power law:

  python -m experiments.sweep --sweep=configs/sweeps/tokens_per_param.py --outdir=runs/tpp20 \
      --max-parallel=2
  python -m analysis.fit --runs=runs/tpp20 --law=power --x=N --out=runs/tpp20/fit

Arguments: `ratio=R` (e.g. configs/sweeps/tokens_per_param.py:ratio=80); each ratio is its own
study and needs its own --outdir. Expected result and run time: experiments/README.md.
"""

from configs import common
from configs import ladder


def get_sweep(arg: str = 'ratio=20') -> dict:
  ratio = common.parse_arg(arg, ratio=20.0)['ratio']
  if not ratio > 0:
    raise ValueError(f'ratio: {ratio} must be a positive number of tokens per parameter')
  runs = [{'name': f'tpp{ratio:g}-{name}', 'config': ladder.CPU_LM, 'tokens_per_param': ratio,
           'overrides': {**shape, **ladder.CPU_LM_TRAINING}}
          for name, shape in ladder.CPU_LM_SHAPES.items()]
  return {'name': f'tokens_per_param_{ratio:g}', 'runs': runs}
