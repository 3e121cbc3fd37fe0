"""The quickstart's LM IsoFLOP sweep: 4 budgets x 4 sizes of byte-level LMs on the embedded corpus.

Study: for each training budget C in {3e10, 1e11, 3e11, 1e12} FLOPs (Chinchilla convention), train
four models of a ladder from 4.9K to 131K parameters, each for exactly C FLOPs with a cosine
schedule fitted to its length; the window of sizes climbs one rung per budget. The 16 (N, D, loss)
points feed the Chinchilla fit L(N, D) = E + A/N^alpha + B/D^beta.

Expected result: each budget's losses form a valley in N whose floor moves to larger N as C grows;
the fit on the three smaller budgets predicts the losses at C = 1e12 to within a few percent (see
experiments/README.md for the measured numbers).

Run time on 2 CPU cores: see experiments/README.md ("Quickstart"). Command:

  python -m experiments.quickstart
  python -m experiments.sweep --sweep=configs/sweeps/quickstart.py --outdir=runs/quickstart/runs \
      --max-parallel=2
"""

from configs import ladder

BUDGETS = [3e10, 1e11, 3e11, 1e12]


def get_sweep() -> dict:
  return {'name': 'quickstart', 'runs': ladder.isoflop_runs(
      ladder.CPU_LM, BUDGETS, ladder.CPU_LM_SHAPES, 4, ladder.CPU_LM_TRAINING)}
