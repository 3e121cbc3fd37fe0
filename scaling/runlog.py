"""Writes the run directory contract (docs/run-format.md): config.json, run.json, metrics.jsonl
and TensorBoard events."""

import json
import os
import time

from tensorboardX import SummaryWriter

FORMAT_VERSION = 1


def write_json_atomic(path: str, obj: dict) -> None:
  tmp = f'{path}.tmp.{os.getpid()}'
  with open(tmp, 'w') as f:
    json.dump(obj, f, indent=2, default=float)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)  # readers see the old or the new file, never half of one


def read_json(path: str) -> dict | None:
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


class RunLog:
  """One per run directory; only process 0 writes."""

  def __init__(self, workdir: str, enabled: bool = True):
    self.workdir, self.enabled = workdir, enabled
    self.run_path = os.path.join(workdir, 'run.json')
    self.metrics_path = os.path.join(workdir, 'metrics.jsonl')
    self.run = read_json(self.run_path) or {'format_version': FORMAT_VERSION, 'wall_time_s': 0.0}
    self._wall_base, self._start = self.run.get('wall_time_s', 0.0), time.time()
    self._metrics = self._tb = None
    if enabled:
      os.makedirs(workdir, exist_ok=True)

  def write_config(self, config_json: str) -> None:
    if self.enabled:
      with open(os.path.join(self.workdir, 'config.json'), 'w') as f:
        f.write(config_json)

  def update(self, **fields) -> None:
    self.run.update(fields, wall_time_s=self._wall_base + time.time() - self._start)
    if self.enabled:
      write_json_atomic(self.run_path, self.run)

  def start_metrics(self, resume_step: int) -> None:
    """Drops rows logged after the checkpoint we resume from, then opens for appending."""
    if not self.enabled:
      return
    rows = read_metrics(self.metrics_path)
    with open(self.metrics_path + '.tmp', 'w') as f:
      f.writelines(json.dumps(r) + '\n' for r in rows if r['step'] <= resume_step)
    os.replace(self.metrics_path + '.tmp', self.metrics_path)
    self._metrics = open(self.metrics_path, 'a')
    self._tb = SummaryWriter(os.path.join(self.workdir, 'tensorboard'))

  def log(self, row: dict) -> None:
    if not self.enabled:
      return
    self._metrics.write(json.dumps(row, default=float) + '\n')
    self._metrics.flush()
    for key, value in row.items():
      if isinstance(value, (int, float)) and key != 'step':
        self._tb.add_scalar(key, value, row['step'])

  def close(self) -> None:
    for f in (self._metrics, self._tb):
      if f is not None:
        f.close()


def read_metrics(path: str) -> list[dict]:
  """All complete rows; a line cut short by a kill is skipped."""
  if not os.path.exists(path):
    return []
  rows = []
  with open(path) as f:
    for line in f:
      try:
        rows.append(json.loads(line))
      except json.JSONDecodeError:
        continue
  return rows
