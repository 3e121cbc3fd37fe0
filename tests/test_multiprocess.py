"""One run as 2 processes x 4 fake CPU devices against 1 process x 8: same losses, and each
process loads its own half of every global batch."""

import json
import os
import socket
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, 'tests', 'multiprocess_worker.py')
ARGS = ['--config=configs/lm.py:size=nano', '--config.seq_len=32', '--config.steps=6',
        '--config.warmup_steps=2', '--config.log_every=2', '--config.eval_every=3',
        '--config.eval_batches=2', '--config.peak_flops=1e9', '--config.mesh.data=2',
        '--config.mesh.fsdp=2', '--config.mesh.tensor=2']


def free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def worker(rows: str, workdir: str, devices: int, *extra: str) -> subprocess.Popen:
  env = dict(os.environ, XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}')
  return subprocess.Popen([sys.executable, WORKER, rows, f'--workdir={workdir}', *ARGS, *extra],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)


def read_jsonl(path: str) -> list[dict]:
  with open(path) as f:
    return [json.loads(line) for line in f]


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  tmp = tmp_path_factory.mktemp('multiprocess')
  coordinator = f'--coordinator_address=localhost:{free_port()}'
  procs = [worker(str(tmp / f'rows{i}.jsonl'), str(tmp / 'two'), 4, coordinator,
                  '--num_processes=2', f'--process_id={i}') for i in range(2)]
  procs.append(worker(str(tmp / 'rows_single.jsonl'), str(tmp / 'one'), 8))
  try:
    outputs = [p.communicate(timeout=400)[0] for p in procs]
  finally:
    for p in procs:
      p.kill()
  for p, out in zip(procs, outputs):
    assert p.returncode == 0, out[-3000:]
  return tmp


def test_two_processes_match_one_process(runs):
  two, one = (read_jsonl(str(runs / d / 'metrics.jsonl')) for d in ('two', 'one'))
  assert [r['step'] for r in two] == [r['step'] for r in one]
  for a, b in zip(two, one):
    for key in ('train_loss', 'eval_loss'):
      if key in b:
        assert a[key] == pytest.approx(b[key], rel=1e-4), (a, b)
  with open(runs / 'two' / 'run.json') as f:
    run = json.load(f)
  assert run['process_count'] == 2 and run['device_count'] == 8 and run['status'] == 'completed'
  assert run['mesh'] == {'data': 2, 'fsdp': 2, 'tensor': 2}


def test_each_process_loads_its_own_half_of_the_global_batch(runs):
  single = {r['step']: r['inputs'] for r in read_jsonl(str(runs / 'rows_single.jsonl'))}
  halves = [{r['step']: r['inputs'] for r in read_jsonl(str(runs / f'rows{i}.jsonl'))}
            for i in range(2)]
  assert sorted(single) == sorted(halves[0]) == sorted(halves[1]) == list(range(6))
  for step, rows in single.items():
    assert len(halves[0][step]) == len(halves[1][step]) == len(rows) // 2
    assert halves[0][step] + halves[1][step] == rows  # process order, no row twice
    assert halves[0][step] != halves[1][step]
