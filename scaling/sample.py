"""Samples from the latest checkpoint of a run: an image grid for a DiT run, text for an LM run.

  python -m scaling.sample --workdir=DIR [--out=grid.png] [--seed=0]

The model is rebuilt from DIR/config.json on one device; a diffusion run's grid goes to
DIR/samples.png (or --out), an LM run's samples are printed, one per line of `--num` lines.
"""

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags, logging
from ml_collections import config_dict

from scaling import checkpoint, run_identity, rundir, sharding, steps
from scaling.errors import ConfigError
from scaling.jsonfile import read_json
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


def read_config(workdir: str) -> tuple[config_dict.ConfigDict, dict | None]:
  """(the config the run's checkpoints were trained with, their inputs). That config wins over an
  edited config.json (with a warning), and stands in for a lost one."""
  step, stored, inputs = rundir.stored_record(workdir)
  on_disk = _read_or_warn(os.path.join(workdir, 'config.json'), stored is not None,
                          rundir.CONFIG_JSON_FIX)
  if stored is None and on_disk is None:
    raise ConfigError(f'workdir: {workdir!r} has no config.json; '
                      'give a run directory of scaling.train')
  if stored is not None and on_disk is not None:
    changed = {k: v for k, v in run_identity.config_changes(stored, on_disk).items()
               if k not in run_identity.MUTABLE}
    if changed:
      rundir.warn(f'config.json differs from the config checkpoint step {step} was trained with ('
                  + ', '.join(f'{k} {b!r}, trained {a!r}' for k, (a, b) in changed.items())
                  + '); sampling with the trained one')
  run = _read_or_warn(os.path.join(workdir, 'run.json'), True, rundir.RUN_JSON_FIX) or {}
  if step is not None and run.get('status') != 'completed':
    rundir.warn(f'{workdir} is {run.get("status", "of unknown status")} at step {step} of '
                f'{(stored or on_disk).get("steps")}, not completed; sampling from that checkpoint')
  return config_dict.ConfigDict(stored or on_disk), inputs


def _read_or_warn(path: str, needless: bool, fix: str) -> dict | None:
  """A JSON file of the run; when `needless` (the checkpoints hold what it says), a damaged one is
  a warning rather than an error, since sampling does not need it."""
  try:
    return read_json(path, fix=fix)
  except ConfigError as e:
    if not needless:
      raise
    rundir.warn(f'{e}; sampling goes on without it')
    return None


def check_tokenizer(tokenizer, inputs: dict | None, dataset: str) -> None:
  """The tokenizer found at the run's dataset is the one it was trained with."""
  trained = (inputs or {}).get('tokenizer')
  found = {k: tokenizer.describe().get(k) for k in ('name', 'vocab_size', 'sha256')}
  if trained and trained != found:
    raise ConfigError(f'dataset: {dataset} now holds the tokenizer {found}, but the run was '
                      f'trained with {trained}; put back the data it was trained on')


def load_model(workdir: str, c: config_dict.ConfigDict):
  """(model at the latest checkpoint, its step), on a one-device mesh."""
  c.mesh = config_dict.ConfigDict(dict(data=1, fsdp=1, tensor=1))
  mesh = jax.make_mesh((1, 1, 1), sharding.AXES, devices=jax.devices()[:1],
                       axis_types=(jax.sharding.AxisType.Auto,) * 3)
  fns = steps.build(c, TASKS[c.task], mesh)
  checkpoint.check_matches(workdir, fns.abstract_state)
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
  logging.set_verbosity(logging.ERROR)  # orbax logs every restore, and what it looks for, below
  workdir = _WORKDIR.value
  try:
    check_flags()
    c, inputs = read_config(workdir)
    if c.task == 'lm':
      tokenizer = lm_task.tokenizer(c)
      check_tokenizer(tokenizer, inputs, c.dataset)
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
