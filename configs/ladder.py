"""What the sweep files share (this file is not a sweep: the sweeps are configs/sweeps/*.py): model
shapes as config overrides, the CPU ladder of byte-level LMs, and IsoFLOP windows over a ladder.

Sweep files declare budgets and shapes; experiments/runspec.py turns each budget into steps with
the task's FLOP count, so nothing here does FLOP arithmetic.
"""

from configs import common


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


def mup(lr: float, base_width: int) -> dict:
  """Overrides that train every size of a ladder under μP with one learning rate, the one tuned
  at d_model = base_width (docs/mup.md; experiments.mup_lr_transfer measures the transfer).
  base_width must divide every size's d_model (4 for CPU_LM_SHAPES). μP carries the learning
  rate across width, not depth: where a ladder also changes n_layer, tune at the deepest."""
  return {'parameterization': 'mup', 'base_width': base_width, 'lr': lr}


def prepared_corpus(arg: str, sweep: str) -> dict:
  """The overrides that point an accelerator sweep at a prepared corpus (`:dataset=tokens:DIR`,
  optionally `,max_epochs=E`). The embedded stdlib corpus (11 MB) would give these sweeps 2 to
  235 epochs per run, so that an IsoFLOP valley measured on it mostly measures memorisation."""
  args = common.parse_arg(arg, dataset='', max_epochs=0.0)
  if not args['dataset'].startswith('tokens:'):
    raise ValueError(f'dataset: {sweep} trains on a prepared corpus, not the embedded one; give '
                     f'{sweep}:dataset=tokens:DIR (DIR from python -m scaling.data.prepare)')
  return {'dataset': args['dataset'], 'max_epochs': args['max_epochs']}


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
