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

from scaling import checkpoint, rundir, sharding, steps
from scaling.errors import ConfigError
from scaling.tasks import TASKS
from scaling.tasks import diffusion as diffusion_task
from scaling.tasks import lm as lm_task

_WORKDIR = flags.DEFINE_string('workdir', None, 'run directory with config.json and checkpoints/')
_OUT = flags.DEFINE_string('out', None, 'PNG path for a diffusion run (default DIR/samples.png)')
_SEED = flags.DEFINE_integer('seed', 0, 'sampling seed')
_NUM = flags.DEFINE_integer('num', 4, 'LM: number of text samples')
_PROMPT = flags.DEFINE_string('prompt', 'def ', 'LM: text each sample starts from')
_TEMPERATURE = flags.DEFINE_float('temperature', 0.8, 'LM: softmax temperature, > 0; 0 means '
                                   'greedy (always the most likely token)')
_VERBOSE = flags.DEFINE_bool('verbose', False, 'show the traceback behind a one-line error')


def check_flags() -> None:
  if not _WORKDIR.value or not os.path.isdir(_WORKDIR.value):
    raise ConfigError(f'--workdir: {_WORKDIR.value!r} is not a directory; give a run directory '
                      'of scaling.train')
  if not _TEMPERATURE.value >= 0:
    raise ConfigError(f'--temperature: {_TEMPERATURE.value} must be > 0, or 0 for greedy '
                      'decoding')
  if _NUM.value < 1:
    raise ConfigError(f'--num: {_NUM.value} must be at least 1')
  if not _PROMPT.value:
    raise ConfigError("--prompt: empty; the LM has no start token, give at least one character "
                      "(e.g. --prompt='def ')")
  out = _OUT.value
  if out and not os.path.isdir(os.path.dirname(os.path.abspath(out))):
    raise ConfigError(f'--out: the folder of {out} does not exist; create it or give another path')


def encode_prompt(tokenizer, prompt: str, seq_len: int) -> np.ndarray:
  ids = tokenizer.encode(prompt.encode())
  if len(ids) >= seq_len:
    raise ConfigError(f'--prompt: {len(ids)} tokens, but the model sees {seq_len} tokens and '
                      f'needs room to sample; give a shorter prompt')
  return ids


def read_config(workdir: str) -> config_dict.ConfigDict:
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    raise ConfigError(f'workdir: {workdir!r} has no config.json; '
                      'give a run directory of scaling.train')
  with open(path) as f:
    return config_dict.ConfigDict(json.load(f))


def load_model(workdir: str, c: config_dict.ConfigDict):
  """(model at the latest checkpoint, its step), on a one-device mesh."""
  c.mesh = config_dict.ConfigDict(dict(data=1, fsdp=1, tensor=1))
  mesh = jax.make_mesh((1, 1, 1), sharding.AXES, devices=jax.devices()[:1],
                       axis_types=(jax.sharding.AxisType.Auto,) * 3)
  fns = steps.build(c, TASKS[c.task], mesh)
  state, meta = checkpoint.restore_latest(checkpoint.manager(workdir, keep=None, create=False),
                                          fns.abstract_state, None, rundir.warn)
  if state is None:
    raise ConfigError(f'workdir: {workdir!r} has no checkpoint yet; train it first')
  return fns.model(state), meta['step']


def lm_text(model, c, tokenizer, prompt_ids: np.ndarray, seed: int) -> list[str]:
  """_NUM texts sampled autoregressively until the window of seq_len tokens is full, decoded with
  the tokenizer the run was trained on (bytes, or a prepared folder's sentencepiece model)."""
  L, n, prompt = c.model.seq_len, _NUM.value, prompt_ids
  tokens_NxL = np.zeros((n, L), np.int32)
  tokens_NxL[:, :len(prompt)] = prompt
  logits_at = jax.jit(lambda tokens_NxL, i: model(tokens_NxL)[:, i])  # causal: later bytes unseen
  key = jax.random.key(seed)
  for i in range(len(prompt), L):
    logits_NxV = logits_at(jnp.asarray(tokens_NxL), i - 1)
    if _TEMPERATURE.value == 0:  # greedy
      tokens_NxL[:, i] = np.asarray(jnp.argmax(logits_NxV, axis=-1))
    else:
      tokens_NxL[:, i] = np.asarray(jax.random.categorical(jax.random.fold_in(key, i),
                                                           logits_NxV / _TEMPERATURE.value))
  return [tokenizer.decode(row).decode('utf-8', 'replace') for row in tokens_NxL]


def main(argv) -> None:
  del argv
  logging.set_verbosity(logging.WARNING)  # orbax logs every restore at INFO
  workdir = _WORKDIR.value
  try:
    check_flags()
    c = read_config(workdir)
    if c.task == 'lm':
      tokenizer = lm_task.tokenizer(c)
      prompt_ids = encode_prompt(tokenizer, _PROMPT.value, c.model.seq_len)
    model, step = load_model(workdir, c)
  except ConfigError as e:
    if _VERBOSE.value:
      raise
    sys.exit(f'error: {e}')
  if c.task == 'diffusion':
    out = _OUT.value or os.path.join(workdir, 'samples.png')
    diffusion_task.write_grid(out, diffusion_task.samples(model, c, _SEED.value))
    print(f'wrote {c.diffusion.n_samples} samples from step {step} to {out}')
    return
  for text in lm_text(model, c, tokenizer, prompt_ids, _SEED.value):
    print(repr(text))


def parse_flags(argv: list[str]) -> list[str]:
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:  # a mistyped flag or value: one line, not absl's usage text
    sys.exit(f'error: {[line.strip() for line in str(e).splitlines() if line.strip()][-1]}')


if __name__ == '__main__':
  flags.mark_flag_as_required('workdir')
  app.run(main, flags_parser=parse_flags)
