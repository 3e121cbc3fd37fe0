"""An accelerator-scale LM IsoFLOP sweep (Chinchilla Approach 2) over the named sizes of
configs/lm.py: 5 budgets from 1e16 to 1e18 FLOPs, each over 5 of 9 sizes from 0.8M to 570M
non-embedding parameters.

Study: every run is sized by `budget` so its Chinchilla-convention FLOPs equal the budget, with a
cosine schedule fitted to its length; the window of sizes climbs one rung per budget, and each
size keeps its own learning rate from configs/lm.py. Batch 64 x 1024 tokens in bfloat16.

Data: a prepared corpus, never the embedded one (2 to 235 epochs per run). The largest run
reads about 3 B tokens, so prepare at least that, e.g. a few GB of text with a 32K vocabulary:

  python -m scaling.data.prepare --dataset=textdir:/data/text \
      --tokenizer=sentencepiece:vocab=32768 --out=/data/text-sp32k

Each run's epochs are in the dry run's table; a run past max_epochs (default 1) is refused.
Arguments: `dataset=tokens:DIR` (required), `max_epochs=E` (to repeat data on purpose).

Expected result: a parabola-like valley of loss against log N at each budget, whose minimum gives
N_opt(C) and D_opt(C); then `python -m analysis.fit --runs=DIR --law=chinchilla --out=DIR/fit`
(`--loss=eval_bits_per_byte` to compare with a study in another tokenizer).
Not run here: the dry run gives its FLOPs and H100-hours:

  python -m experiments.sweep --sweep=configs/sweeps/isoflop.py:dataset=tokens:/data/text-sp32k \
      --outdir=runs/isoflop --dry-run
  python -m experiments.sweep --sweep=configs/sweeps/isoflop.py:dataset=tokens:/data/text-sp32k \
      --outdir=runs/isoflop --max-parallel=8             # one run per GPU of an 8-GPU host
"""

from configs import lm
from configs import ladder

BUDGETS = [1e16, 3e16, 1e17, 3e17, 1e18]
NAMES = ('tiny', 'small', 'm10', 'm25', 'm50', 'm85', 'm150', 'm300', 'm600')
SHAPES = {name: {**ladder.shape(*lm.SIZES[name][:3]), 'lr': lm.SIZES[name][3]} for name in NAMES}
TRAINING = {'seq_len': 1024, 'batch_size': 64, 'dtype': 'bfloat16', 'warmup_steps': 100,
            'eval_every': 500, 'checkpoint_every': 500, 'log_every': 50}


def get_sweep(arg: str = '') -> dict:
  training = {**TRAINING, **ladder.prepared_corpus(arg, 'configs/sweeps/isoflop.py')}
  return {'name': 'isoflop',
          'runs': ladder.isoflop_runs('configs/lm.py:size=tiny', BUDGETS, SHAPES, 5, training)}
