"""XLA:CPU flags against the default, on the real train step: one row per flag set, rounds
interleaved (a shared CPU drifts by 15-30% over minutes), medians reported.

  python -m benchmarks.xla_cpu_flags --rounds=3 -- --config.dtype=float32

Each row runs `python -m benchmarks.train_throughput --json` in a fresh interpreter with XLA_FLAGS
set (XLA reads them once, at start-up); arguments after `--` go to every run. The rows are the
flags that could change where XLA:CPU spends the step (docs/performance.md): the matmul library
(YNNPACK by default, oneDNN, XNNPACK's graph fusion) and the vector width.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

FLAG_SETS = {
    'default': '',
    'onednn': '--xla_cpu_use_onednn=true',
    'xnn_graph_greedy': '--xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY',
    'no_xnnpack': '--xla_cpu_use_xnnpack=false',
    'vector_width_512': '--xla_cpu_prefer_vector_width=512',
}


def run(flags: str, extra: list[str], timeout: int) -> dict:
  env = {**os.environ, 'XLA_FLAGS': f'{os.environ.get("XLA_FLAGS", "")} {flags}'.strip()}
  out = subprocess.run([sys.executable, '-m', 'benchmarks.train_throughput', '--json', *extra],
                       env=env, capture_output=True, text=True, timeout=timeout)
  lines = [l for l in out.stdout.splitlines() if l.startswith('{')]
  if out.returncode or not lines:
    return {'error': (out.stderr.strip().splitlines() or ['no output'])[-1]}
  return json.loads(lines[-1])


def main() -> int:
  p = argparse.ArgumentParser(prog='python -m benchmarks.xla_cpu_flags')
  p.add_argument('--rounds', type=int, default=3)
  p.add_argument('--only', default='', help='comma-separated rows of FLAG_SETS (default: all)')
  p.add_argument('--timeout', type=int, default=600, help='seconds per run')
  args, extra = p.parse_known_args()
  extra = [a for a in extra if a != '--']
  names = [n for n in args.only.split(',') if n] or list(FLAG_SETS)
  unknown = sorted(set(names) - set(FLAG_SETS))
  if unknown:
    sys.exit(f'error: --only: unknown {", ".join(unknown)}; use some of {", ".join(FLAG_SETS)}')
  results = {n: [] for n in names}
  for r in range(args.rounds):
    for n in names:
      results[n].append(run(FLAG_SETS[n], extra, args.timeout))
      print(f'round {r + 1}/{args.rounds} {n}: '
            f'{results[n][-1].get("tokens_per_s", results[n][-1].get("error"))}', file=sys.stderr)
  base = statistics.median(x['tokens_per_s'] for x in results['default'] if 'tokens_per_s' in x) \
      if 'default' in results else None
  print(f'{"flags":20s} {"tokens/s":>10s} {"vs default":>10s} {"compile s":>9s}  XLA_FLAGS')
  for n in names:
    ok = [x for x in results[n] if 'tokens_per_s' in x]
    if not ok:
      print(f'{n:20s} {"failed":>10s}  {results[n][-1]["error"]}')
      continue
    tps = statistics.median(x['tokens_per_s'] for x in ok)
    ratio = f'{tps / base:.2f}x' if base else ''
    print(f'{n:20s} {tps:10,.0f} {ratio:>10s} {statistics.median(x["compile_s"] for x in ok):9.1f}'
          f'  {FLAG_SETS[n]}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
