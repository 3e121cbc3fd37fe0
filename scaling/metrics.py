"""Turns device-side step metrics into metrics.jsonl rows: tokens, cumulative FLOPs under both
conventions, learning rate, throughput and MFU; and eval values into eval rows, each mean with
its standard error (scaling.stderr).

Rows are pulled one window late: the window that closes at step s is fetched after step s + 1
has been dispatched, so the host waits on the device only at the first step, at evals and at
checkpoints (which need the values anyway).
"""

import time

import jax
import numpy as np

from scaling import flops, optim, precision, stderr


def _to_json(value):
  value = np.asarray(value)
  return float(value) if value.ndim == 0 else value.tolist()


def final_values(rows) -> dict:
  """run.json's `final` from metrics rows in their order: the last train row's counts and loss,
  and the last eval row's loss with each measured mean and its standard error."""
  final = {}
  for row in rows:
    if 'train_loss' in row:
      final |= {k: row[k] for k in ('step', 'tokens', 'flops', 'train_loss')}
    if 'eval_loss' in row:
      final['eval_loss'] = row['eval_loss']
      for name in (k for k in row if k.endswith('_stderr')):  # each mean travels with its noise
        final |= {name: row[name], name.removesuffix('_stderr'): row[name.removesuffix('_stderr')]}
  return final


def noise_scale(cov_trace: float, true_sq_norm: float) -> float | None:
  """B_simple = tr(Σ)/|G|² in examples, from the two parts averaged over a log window (a ratio of
  means, not a mean of ratios: each part is unbiased, their per-step ratio is not); None when the
  window's |G|² estimate is not positive, as it can be once the noise swamps the gradient."""
  return cov_trace / true_sq_norm if true_sq_norm > 0 else None


class Accounting:

  def __init__(self, c, described: dict, mesh: jax.sharding.Mesh):
    self.log_every, self.steps = c.log_every, c.steps
    self.tokens_per_step = described['tokens_per_step']
    self.flops_per_token = described['flops_per_token']
    self.lr = optim.schedule(c)
    self.peak = flops.peak_flops_per_device(mesh.devices.flat[0], precision.compute_dtype(c.dtype),
                                            c.peak_flops)
    self.n_devices = mesh.devices.size
    self.n_eval_rows = c.batch_size * c.eval_batches  # examples or windows behind each eval mean
    self.tokens_per_epoch = (described.get('corpus') or {}).get('tokens_per_epoch')  # lm only
    self.window, self.pending, self.timer = [], None, None
    self.final = {}

  def _counts(self, step: int) -> dict:
    tokens = step * self.tokens_per_step
    row = {'step': step, 'tokens': tokens,
           'flops': {k: tokens * v for k, v in self.flops_per_token.items()}}
    if self.tokens_per_epoch:  # passes over the train split: tokens seen / tokens per epoch
      row['epoch'] = tokens / self.tokens_per_epoch
    return row

  def add(self, step: int, metrics: dict, close: bool = False) -> list[dict]:
    """Records step `step` (1-based); returns the rows that became ready. `close` ends the window."""
    if self.timer is None:  # the first step includes compilation: time from its end
      jax.block_until_ready(metrics)
      self.timer = (step, time.perf_counter())
    rows = [self._pull()] if self.pending else []
    self.window.append(metrics)
    if close or step % self.log_every == 0 or step == self.steps:
      self.pending, self.window = (step, self.window), []
    return rows

  def open_window(self) -> list[dict]:
    """The metrics of steps not yet in a row, as JSON floats: a checkpoint keeps them so that a
    resumed run logs the same rows as an uninterrupted one."""
    return [{k: float(v) for k, v in m.items()} for m in jax.device_get(self.window)]

  def resume_window(self, window: list[dict]) -> None:
    self.window = [{k: np.float32(v) for k, v in m.items()} for m in window]  # exact round trip

  def flush(self) -> list[dict]:
    return [self._pull()] if self.pending else []

  def _pull(self) -> dict:
    step, window = self.pending
    self.pending = None
    values = jax.device_get(window)
    now = time.perf_counter()
    timed_steps = step - self.timer[0]
    row = self._counts(step) | {'lr': float(self.lr(step - 1))}
    row |= {k: float(np.mean([v[k] for v in values])) for k in values[0]}
    if 'grad_cov_trace' in row:
      row['grad_noise_scale'] = noise_scale(row['grad_cov_trace'], row['grad_true_sq_norm'])
    if timed_steps > 0:
      step_time = (now - self.timer[1]) / timed_steps
      tokens_per_s = self.tokens_per_step / step_time
      row |= {'step_time': step_time, 'tokens_per_s': tokens_per_s,
              'mfu': flops.mfu(self.flops_per_token['chinchilla'], tokens_per_s, self.peak,
                               self.n_devices)}
      self.timer = (step, now)
    self.final |= final_values([row])
    return row

  def eval_row(self, step: int, values: dict) -> dict:
    """The eval means, and `<name>_stderr` for every `<name>_moments` the task returned."""
    means = {k: v for k, v in values.items() if not k.endswith(stderr.SUFFIX)}
    errors = {k.removesuffix(stderr.SUFFIX) + '_stderr': stderr.from_moments(v, self.n_eval_rows)
              for k, v in values.items() if k.endswith(stderr.SUFFIX)}
    row = self._counts(step) | {k: _to_json(v) for k, v in means.items()} | errors
    self.final |= final_values([row])
    if self.timer is not None:  # eval time is not training time; the window was flushed before
      self.timer = (step, time.perf_counter())
    return row
