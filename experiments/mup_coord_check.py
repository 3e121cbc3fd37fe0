"""μP coordinate check: activation sizes against width, for sp and mup, after a few steps.

Trains each width (d_model 64, 128, 256, 512 at a fixed head count, so the head width grows) for
`--steps` Adam steps with the ordinary step functions on the task's embedded data, then runs one
fixed probe batch through the model at init and after training and records, per layer type, the
RMS of the activations and of their change since init. A layer's log-log slope against width is
about 0 under μP and grows under sp (the output logits' by about +1: the readout's Adam step is
correlated with its width-n input). Writes OUT/coord_check.json (the slopes and the RMS) and
OUT/coord_check.png.

  python -m experiments.mup_coord_check --task=lm --out=runs/mup_coord/lm
  python -m experiments.mup_coord_check --task=dit --out=runs/mup_coord/dit

The activations are read by wrapping submodules of the trained model in recorders, outside the
step functions, so training is the ordinary jitted step, unchanged.
"""

import json
import os

import jax
import numpy as np
from absl import app, flags
from ml_collections import config_dict

from configs import dit as dit_configs
from configs import lm as lm_configs
from scaling import sharding, steps
from scaling.tasks import TASKS

WIDTHS = (64, 128, 256, 512)
TASK_NAMES = {'lm': 'lm', 'dit': 'diffusion'}


def config(task: str, parameterization: str, width: int, base_width: int = WIDTHS[0],
           lr: float | None = None) -> config_dict.ConfigDict:
  """A small model of the given width: 2 layers, 2 (LM) or 4 (DiT) heads, constant lr."""
  if task == 'lm':
    c = lm_configs.get_config('size=nano')
    c.seq_len, c.batch_size, c.lr = 32, 8, lr or 1e-2
    c.model.n_head = 2
  else:
    c = dit_configs.get_config('size=tiny')
    c.batch_size, c.lr = 16, lr or 1e-2
    c.model.n_head = 4
  c.model.n_layer, c.model.d_model = 2, width
  c.update(dict(parameterization=parameterization, base_width=base_width, schedule='constant',
                warmup_steps=0, steps=100, eval_batches=1))
  return c


class Recorder:
  """Stands in for a submodule: calls it and keeps its input or output under `name`."""

  def __init__(self, inner, name: str, out: dict, record_input: bool = False):
    self.inner, self.name, self.out, self.record_input = inner, name, out, record_input

  def __call__(self, *args, **kwargs):
    y = self.inner(*args, **kwargs)
    seen = args[0] if self.record_input else y
    self.out.setdefault(self.name, []).extend(seen if isinstance(seen, list) else [seen])
    return y


def _record(task: str, model, probe: dict) -> dict[str, list[jax.Array]]:
  """Each layer type's activations on the probe batch (a list: one per block where repeated)."""
  out: dict = {}
  if task == 'lm':
    for i, block in enumerate(model.blocks):
      block.attn_norm = Recorder(block.attn_norm, 'embed' if i == 0 else 'residual', out, True)
      block.attn = Recorder(block.attn, 'attn', out)
      block.mlp = Recorder(block.mlp, 'mlp', out)
    model.out_norm = Recorder(model.out_norm, 'residual', out, True)
    out['logits'] = [model(probe['inputs'])]
  else:
    net = model.net
    net.cond = Recorder(net.cond, 'condition', out)
    for block in net.blocks:
      block.modulation = Recorder(block.modulation, 'modulation', out)
      block.attn = Recorder(block.attn, 'attn', out)
      block.mlp = Recorder(block.mlp, 'mlp', out)
    out['output'] = [net(probe['z'], probe['t'], probe['label'])]
  return out


def _probe(task: str, c: config_dict.ConfigDict, batch: dict) -> dict:
  if task == 'lm':
    return batch
  # A fixed noisy input at t = 0.5: image plus unit noise, the same for every width.
  rng = np.random.default_rng(0)
  image = batch['image']
  return {'z': (0.7 * image + 0.7 * rng.standard_normal(image.shape)).astype(np.float32),
          't': np.full(image.shape[:1], 0.5, np.float32), 'label': batch['label']}


def rms(xs: list[np.ndarray]) -> float:
  return float(np.mean([np.sqrt(np.mean(x * x)) for x in xs]))


def measure(task: str, parameterization: str, width: int, n_steps: int, **kw) -> dict:
  """{layer: {'rms': RMS after n_steps, 'delta_rms': RMS of the change since init}}."""
  c = config(task, parameterization, width, **kw)
  task_module = TASKS[TASK_NAMES[task]]
  mesh = sharding.make_mesh(c.mesh)
  fns = steps.build(c, task_module, mesh)
  data = task_module.make_data(c, 0, 1)
  probe = _probe(task, c, data.train_batch(0))
  # One jitted probe for both measurements; the recorders only see this function's trace.
  record = jax.jit(lambda params: _record(task, fns.model({'params': params}), probe))
  read = lambda state: {k: [np.asarray(v, np.float64) for v in vs]
                        for k, vs in jax.device_get(record(state['params'])).items()}
  state = fns.init()
  before = read(state)
  for step in range(n_steps):
    batch = sharding.global_batch(data.train_batch(step), mesh)
    state, _ = fns.train_step(state, batch, step)
  after = read(state)
  return {k: {'rms': rms(after[k]), 'delta_rms': rms([a - b for a, b in zip(after[k], before[k])])}
          for k in after}


def slope(widths, values) -> float:
  """The least-squares slope of log(value) against log(width)."""
  return float(np.polyfit(np.log(widths), np.log(values), 1)[0])


def coord_check(task: str, widths=WIDTHS, n_steps: int = 3,
                parameterizations=('sp', 'mup'), **kw) -> dict:
  result = {'task': task, 'widths': list(widths), 'steps': n_steps, 'base_width': widths[0]}
  for p in parameterizations:
    runs = [measure(task, p, w, n_steps, base_width=widths[0], **kw) for w in widths]
    layers = list(runs[0])
    result[p] = {
        'rms': {k: [r[k]['rms'] for r in runs] for k in layers},
        'delta_rms': {k: [r[k]['delta_rms'] for r in runs] for k in layers},
        'slope': {k: slope(widths, [r[k]['rms'] for r in runs]) for k in layers},
        'delta_slope': {k: slope(widths, [r[k]['delta_rms'] for r in runs]) for k in layers},
    }
  return result


def plot(result: dict, path: str) -> None:
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  ps = [p for p in ('sp', 'mup') if p in result]
  fig, axes = plt.subplots(2, len(ps), figsize=(5 * len(ps), 8), squeeze=False)
  for j, p in enumerate(ps):
    for i, (what, label) in enumerate((('rms', 'activation RMS'),
                                       ('delta_rms', 'RMS of change since init'))):
      ax = axes[i][j]
      for layer, values in result[p][what].items():
        s = result[p]['slope' if what == 'rms' else 'delta_slope'][layer]
        ax.loglog(result['widths'], values, 'o-', label=f'{layer} (slope {s:+.2f})')
      ax.set(xlabel='width (d_model)', ylabel=label,
             title=f'{result["task"]} {p}, after {result["steps"]} steps')
      ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


FLAGS = flags.FLAGS
flags.DEFINE_enum('task', 'lm', list(TASK_NAMES), 'lm or dit')
flags.DEFINE_string('out', '', 'output folder (default runs/mup_coord/TASK)')
flags.DEFINE_integer('steps', 3, 'Adam steps per width')
flags.DEFINE_list('widths', [str(w) for w in WIDTHS], 'd_model values; the first is base_width')
flags.DEFINE_float('lr', 1e-2, 'constant learning rate')


def main(_):
  widths = [int(w) for w in FLAGS.widths]
  out = FLAGS.out or os.path.join('runs', 'mup_coord', FLAGS.task)
  result = coord_check(FLAGS.task, widths, FLAGS.steps, lr=FLAGS.lr)
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, 'coord_check.json'), 'w') as f:
    json.dump(result, f, indent=1)
  plot(result, os.path.join(out, 'coord_check.png'))
  for p in ('sp', 'mup'):
    print(p, ' '.join(f'{k}={v:+.3f}' for k, v in result[p]['slope'].items()))
  print(f'wrote {out}/coord_check.json and coord_check.png')


if __name__ == '__main__':
  app.run(main)
