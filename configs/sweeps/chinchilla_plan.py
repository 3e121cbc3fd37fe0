"""A Chinchilla-scale IsoFLOP plan (Hoffmann et al. 2022, Approach 2): 9 budgets from 6e18 to
3e21 FLOPs, each over 8 of 16 model sizes from 45M to 14B parameters. For planning only.

Study: the budgets of Chinchilla's IsoFLOP profiles (their Figure 3), with the window of sizes
climbing one rung per budget; batch 256 x 2048 tokens in bfloat16. Every run is sized by
`budget` so its Chinchilla-convention FLOPs equal the budget.

Data: a prepared corpus (`:dataset=tokens:DIR`, from python -m scaling.data.prepare), never the
embedded one; the largest run reads about 450 B tokens, and a run past max_epochs (default 1) is
refused. Arguments: `dataset=tokens:DIR` (required), `max_epochs=E` (to repeat data on purpose).

Expected result: this is a plan, not a run. The dry run prints each run's N, D, FLOPs, share and
epochs, the total, and the H100-hours it would take at the stated MFU:

  python -m experiments.sweep --sweep=configs/sweeps/chinchilla_plan.py:dataset=tokens:DIR \
      --outdir=runs/chinchilla_plan --dry-run [--mfu=0.4]

On a cluster: the same with --backend=slurm --nodes=N --gpus-per-node=8 (see experiments/README.md).
"""

from configs import ladder

BUDGETS = [6e18, 1e19, 3e19, 6e19, 1e20, 3e20, 6e20, 1e21, 3e21]
# about 1.47x apart in parameters; head dimension 128
SHAPES = {
    '45M': ladder.shape(9, 640, 5),
    '64M': ladder.shape(13, 640, 5),
    '97M': ladder.shape(10, 896, 7),
    '139M': ladder.shape(11, 1024, 8),
    '208M': ladder.shape(13, 1152, 9),
    '303M': ladder.shape(19, 1152, 9),
    '453M': ladder.shape(19, 1408, 11),
    '652M': ladder.shape(23, 1536, 12),
    '957M': ladder.shape(19, 2048, 16),
    '1.4B': ladder.shape(28, 2048, 16),
    '2.1B': ladder.shape(41, 2048, 16),
    '3.0B': ladder.shape(32, 2816, 22),
    '4.5B': ladder.shape(47, 2816, 22),
    '6.6B': ladder.shape(46, 3456, 27),
    '9.7B': ladder.shape(38, 4608, 36),
    '14B': ladder.shape(43, 5248, 41),
}
TRAINING = {'seq_len': 2048, 'batch_size': 256, 'dtype': 'bfloat16', 'warmup_steps': 500,
            'eval_every': 1000, 'checkpoint_every': 1000, 'log_every': 50}


def get_sweep(arg: str = '') -> dict:
  training = {**TRAINING, **ladder.prepared_corpus(arg, 'configs/sweeps/chinchilla_plan.py')}
  return {'name': 'chinchilla_plan',
          'runs': ladder.isoflop_runs('configs/lm.py:size=b1', BUDGETS, SHAPES, 8, training)}
