"""One model under several learning-rate schedules, for the loss-curve laws (analysis.curve): fit
the law on two or three curves, predict the others' whole curves.

Study: the quickstart's largest CPU LM (n131k: 2 layers, d_model 64; configs/ladder.py) at one
horizon H = 6000 steps under a constant LR, a cosine decay, a two-stage schedule (the peak LR
until H/2, then peak/10: Luo et al.'s `wsdcon`) and WSD with linear cooldowns over the last 10%,
20% and 40% of H; plus a cosine over 3H. Every decay ends at peak/10 (min_lr_ratio 0.1). Evals
every 200 steps on 64 held-out batches give each curve's points and their standard errors.

The two-stage and WSD runs are branches of the constant run, forked from its checkpoints at
H/2, 0.6H, 0.8H and 0.9H: before the fork their training is the constant run's (same state, same
data order), so each costs only its own steps. A branch's config.json describes its own steps;
the LR of the steps before its fork is its trunk's (analysis.curves reads both).

Expected result: fitted on constant + cosine (+ two-stage), the multi-power law predicts the WSD
curves' final losses to within the eval standard error; see docs/analysis.md for the measured
table.

  python -m experiments.sweep --sweep=configs/sweeps/schedules.py --outdir=runs/schedules \
      --max-parallel=2
"""

from configs import ladder
from configs import lm

SIZE = 'n131k'
HORIZON = 6000
TRAINING = {**ladder.CPU_LM_TRAINING, 'eval_every': 200, 'eval_batches': 64}
FINAL = 0.1  # every decay ends at peak x FINAL
COOLDOWNS = (0.1, 0.2, 0.4)  # WSD: fractions of the horizon spent cooling down
TWO_STAGE_SWITCH = HORIZON // 2


def run(name: str, steps: int, fields: dict, fork: int | None = None) -> dict:
  spec = {'name': name, 'config': ladder.CPU_LM, 'overrides': {
      **ladder.CPU_LM_SHAPES[SIZE], **TRAINING, 'steps': steps, 'min_lr_ratio': FINAL, **fields}}
  if fork is not None:
    spec['fork'] = {'trunk': 'constant', 'step': fork}
  return spec


def get_sweep() -> dict:
  peak = lm.SIZES['nano'][3]  # the LR of ladder.CPU_LM's config
  # longest first: with 2 at a time, cosine3x runs beside the constant run and its branches
  runs = [
      run('cosine3x', 3 * HORIZON, {'schedule': 'cosine'}),
      run('constant', HORIZON, {'schedule': 'constant', 'checkpoint_every': HORIZON // 10,
                                'keep_checkpoints': 10}),
      run('twostage', HORIZON, {'schedule': 'constant', 'lr': peak * FINAL, 'warmup_steps': 0},
          fork=TWO_STAGE_SWITCH),
      *[run(f'wsd{round(100 * f)}', HORIZON, {'schedule': 'wsd', 'cooldown_fraction': f},
            fork=HORIZON - round(f * HORIZON)) for f in COOLDOWNS],
      run('cosine', HORIZON, {'schedule': 'cosine'}),
  ]
  return {'name': 'schedules', 'runs': runs}
