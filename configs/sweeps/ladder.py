"""What the sweep files share: model shapes as config overrides, the CPU ladder of byte-level LMs,
and IsoFLOP windows over a ladder.

Sweep files declare budgets and shapes; experiments/runspec.py turns each budget into steps with
the task's FLOP count, so nothing here does FLOP arithmetic.
"""


def shape(n_layer: int, d_model: int, n_head: int) -> dict:
  return {'model.n_layer': n_layer, 'model.d_model': d_model, 'model.n_head': n_head}


# Byte-level LMs for CPU studies, about 1.7x apart in parameters (embeddings included), with
# short windows and small batches: many optimizer steps per FLOP, as such small models need.
CPU_LM = 'configs/lm.py:size=nano'
CPU_LM_SHAPES = {
    'n5k': shape(1, 8, 2),
    'n8k': shape(1, 12, 2),
    'n11k': shape(1, 16, 2),
    'n26k': shape(2, 24, 2),
    'n41k': shape(2, 32, 2),
    'n80k': shape(2, 48, 2),
    'n131k': shape(2, 64, 2),
}
CPU_LM_TRAINING = {'seq_len': 64, 'batch_size': 8, 'eval_batches': 32, 'eval_every': 100_000,
                   'log_every': 50, 'checkpoint_every': 500}


def budget_name(budget: float) -> str:
  return f'{budget:.0e}'.replace('e+', 'e')  # 3e+10 -> 3e10


def isoflop_runs(config: str, budgets: list[float], shapes: dict[str, dict], width: int,
                 overrides: dict) -> list[dict]:
  """Budget i trains the `width` shapes from shapes[i] on (shapes ordered by size).

  The window climbs one shape per budget because the compute-optimal size grows with the budget;
  a ladder spaced about 1.7x in N keeps the optimum inside the window for budgets 3x apart.
  """
  names = list(shapes)
  if len(names) < len(budgets) + width - 1:
    raise ValueError(f'{len(budgets)} budgets with windows of {width} need '
                     f'{len(budgets) + width - 1} shapes, not {len(names)}')
  return [{'name': f'C{budget_name(budget)}-{name}', 'config': config, 'budget': budget,
           'overrides': {**shapes[name], **overrides}}
          for i, budget in enumerate(budgets) for name in names[i:i + width]]
