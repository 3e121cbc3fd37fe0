"""WSD cooldown branches (Hägele et al. 2024): one constant-learning-rate trunk per size, and
cooldown branches forked from its checkpoints, so one trunk yields several (N, D) points.

Study: 4 CPU byte-level LMs (11K to 80K parameters; configs/ladder.py) each train a trunk
of 4000 steps at constant LR after warmup, checkpointing every 1000 steps. From the trunk's state
at S = 1000, 2000 and 4000 steps a branch trains S/4 more steps while the LR decays linearly
(schedule=wsd, cooldown_fraction=0.2 of the branch's length). Each branch's tokens and FLOPs count
from step 0: the trunk up to the fork plus its own cooldown. A size's 3 points cost 5750 steps
(trunk 4000, cooldowns 1750) instead of 8750 as 3 separate runs; the launcher runs each trunk
before its branches.

Expected result: the branches' losses fall with D at each size like separately trained runs'.
The trunks themselves end at constant LR and are not results: fit the branches only.

  python -m experiments.sweep --sweep=configs/sweeps/wsd_branches.py --outdir=runs/wsd \
      --max-parallel=2
"""

from configs import ladder

SIZES = ('n11k', 'n26k', 'n41k', 'n80k')
TRUNK_STEPS = 4000
FORKS = (1000, 2000, 4000)  # each a checkpoint the trunk keeps


def trunk(name: str) -> dict:
  return {'name': f'{name}-trunk', 'config': ladder.CPU_LM, 'overrides': {
      **ladder.CPU_LM_SHAPES[name], **ladder.CPU_LM_TRAINING, 'steps': TRUNK_STEPS,
      'schedule': 'constant', 'checkpoint_every': 1000, 'keep_checkpoints': len(FORKS) + 1}}


def branch(name: str, fork: int) -> dict:
  cooldown = fork // 4
  return {'name': f'{name}-cool{fork}', 'config': ladder.CPU_LM,
          'fork': {'trunk': f'{name}-trunk', 'step': fork}, 'overrides': {
              **ladder.CPU_LM_SHAPES[name], **ladder.CPU_LM_TRAINING, 'steps': fork + cooldown,
              'schedule': 'wsd', 'cooldown_fraction': cooldown / (fork + cooldown)}}


def get_sweep() -> dict:
  runs = []
  for name in SIZES:
    runs += [trunk(name)] + [branch(name, fork) for fork in FORKS]
  return {'name': 'wsd_branches', 'runs': runs}
