"""A DiT IsoFLOP ladder on the embedded 8x8 digits: 4 budgets x 4 sizes of class-conditional DiTs.

Study: for each budget C in {1e10, 3e10, 1e11, 3e11} FLOPs (Chinchilla convention, counted per
image from the layer shapes; see scaling/dit_flops.py), train four DiTs with patch 2 from a ladder
of 3.7K to 180K parameters for exactly C FLOPs; the window of sizes climbs one rung per budget.
The loss is the noise-prediction objective on fixed held-out (image, log-SNR, noise) triples.

Expected result: loss falls with compute along the frontier. The digits set is small (about 1,700
training images), so at the largest budget the bigger models see it tens of times; see
experiments/README.md for what the fit found.

  python -m experiments.quickstart --task=diffusion
  python -m experiments.sweep --sweep=configs/sweeps/dit_ladder.py --outdir=runs/dit_ladder \
      --max-parallel=2
"""

from configs import ladder

BUDGETS = [1e10, 3e10, 1e11, 3e11]
SHAPES = {
    'n5k': ladder.shape(1, 8, 2),
    'n10k': ladder.shape(1, 16, 2),
    'n15k': ladder.shape(2, 16, 2),
    'n30k': ladder.shape(2, 24, 2),
    'n50k': ladder.shape(2, 32, 2),
    'n105k': ladder.shape(2, 48, 4),
    'n180k': ladder.shape(2, 64, 4),
}
# 11 x 16 eval examples: the 180 held-out digits hold no more without repeating an image.
TRAINING = {'batch_size': 16, 'eval_batches': 11, 'eval_every': 100_000, 'log_every': 50,
            'checkpoint_every': 1000, 'diffusion.n_samples': 16, 'diffusion.sample_steps': 10}


def get_sweep() -> dict:
  return {'name': 'dit_ladder',
          'runs': ladder.isoflop_runs('configs/dit.py:size=tiny', BUDGETS, SHAPES, 4, TRAINING)}
