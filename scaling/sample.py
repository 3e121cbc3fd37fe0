"""Samples from the latest checkpoint of a run: an image grid for a DiT run, text for an LM run.

  python -m scaling.sample --workdir=DIR [--out=grid.png] [--seed=0]

The model is rebuilt from DIR/config.json on one device; a diffusion run's grid goes to
DIR/samples.png (or --out), an LM run's samples are printed, one per line of `--num` lines.
"""

import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags, logging
from ml_collections import config_dict

from scaling import checkpoint, sharding, steps
from scaling.errors import ConfigError
from scaling.tasks import TASKS
from scaling.tasks import diffusion as diffusion_task

_WORKDIR = flags.DEFINE_string('workdir', None, 'run directory with config.json and checkpoints/')
_OUT = flags.DEFINE_string('out', None, 'PNG path for a diffusion run (default DIR/samples.png)')
_SEED = flags.DEFINE_integer('seed', 0, 'sampling seed')
_NUM = flags.DEFINE_integer('num', 4, 'LM: number of text samples')
_PROMPT = flags.DEFINE_string('prompt', 'def ', 'LM: text each sample starts from')
_TEMPERATURE = flags.DEFINE_float('temperature', 0.8, 'LM: softmax temperature')


def load_model(workdir: str):
  """(config, model at the latest checkpoint), on a one-device mesh."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    raise ConfigError(f'workdir: {workdir!r} has no config.json; '
                      'give a run directory of scaling.train')
  with open(path) as f:
    c = config_dict.ConfigDict(json.load(f))
  c.mesh = config_dict.ConfigDict(dict(data=1, fsdp=1, tensor=1))
  mesh = jax.make_mesh((1, 1, 1), sharding.AXES, devices=jax.devices()[:1],
                       axis_types=(jax.sharding.AxisType.Auto,) * 3)
  fns = steps.build(c, TASKS[c.task], mesh)
  state, meta = checkpoint.restore(checkpoint.manager(workdir, keep=None, create=False),
                                   fns.abstract_state)
  if state is None:
    raise ConfigError(f'workdir: {workdir!r} has no checkpoint yet; train it first')
  return c, fns.model(state), meta['step']


def lm_text(model, c, prompt: bytes, seed: int) -> list[str]:
  """_NUM byte strings sampled autoregressively until the window of seq_len bytes is full."""
  L, n = c.model.seq_len, _NUM.value
  tokens_NxL = np.zeros((n, L), np.int32)
  tokens_NxL[:, :len(prompt)] = np.frombuffer(prompt, np.uint8)
  logits_at = jax.jit(lambda tokens_NxL, i: model(tokens_NxL)[:, i])  # causal: later bytes unseen
  key = jax.random.key(seed)
  for i in range(len(prompt), L):
    logits_NxV = logits_at(jnp.asarray(tokens_NxL), i - 1) / _TEMPERATURE.value
    tokens_NxL[:, i] = np.asarray(jax.random.categorical(jax.random.fold_in(key, i), logits_NxV))
  return [row.astype(np.uint8).tobytes().decode('utf-8', 'replace') for row in tokens_NxL]


def main(argv) -> None:
  del argv
  logging.set_verbosity(logging.WARNING)  # orbax logs every restore at INFO
  workdir = _WORKDIR.value
  try:
    c, model, step = load_model(workdir)
  except ConfigError as e:
    sys.exit(f'error: {e}')
  if c.task == 'diffusion':
    out = _OUT.value or os.path.join(workdir, 'samples.png')
    diffusion_task.write_grid(out, diffusion_task.samples(model, c, _SEED.value))
    print(f'wrote {c.diffusion.n_samples} samples from step {step} to {out}')
    return
  for text in lm_text(model, c, _PROMPT.value.encode(), _SEED.value):
    print(repr(text))


if __name__ == '__main__':
  flags.mark_flag_as_required('workdir')
  app.run(main)
