#!/usr/bin/env bash
# The GPU numbers of issue 10 in one call: benchmarks/train_throughput.py --json for a ~350M LM at
# sequence 2048 and for DiT-B/2 on 32x32x4 latents (256x256 images), bf16, on one GPU. Appends
# the two JSON lines to benchmarks/results/<UTC date and time>-<host>.jsonl (README.md there).
#
#   bash benchmarks/gpu.sh                    # on a host with an NVIDIA GPU, within 290 s
#   GPU_SH_DRY_RUN=1 bash benchmarks/gpu.sh   # the same steps on CPU with tiny shapes
#
# The LM is configs/lm.py:size=m300 (24 layers, d_model 1024, 16 heads, d_ff 4096) with a
# 32768-token vocabulary, a subword vocabulary of LLaMA's size rounded to a power of two so the
# logits matmul tiles evenly: 369M parameters, 302M non-embedding. The embedded corpus's 256-byte
# vocabulary would understate the output layer's share of a real LM's FLOPs.
# Its batch fills the device: a short probe at a small batch measures the fixed memory (peak less
# the compiled step's temporaries: parameters and Adam state) and the temporaries per sequence,
# and the timed run takes the largest multiple of the probe batch that keeps the peak under
# GPU_SH_FILL of the GPU's memory. The temporaries include the gradients, which do not grow with
# the batch, so the estimate errs small; an out-of-memory run is retried once at half the batch.
# No gradient accumulation: one optimizer step per timed step, as in the throughput of a real run.
#
# Time: each benchmark runs under `timeout`, all of them within GPU_SH_BUDGET_S (290 s) counted
# from the start. Nothing is downloaded when the Python has what the code imports. The device
# machine's python3 has jax (CUDA), flax, optax and orbax but not ml-collections, which is
# installed with --no-deps into a scratch folder from the wheels in GPU_SH_WHEELS (.whl; pure
# Python, seconds) or else from the package registry.
#
# Environment: GPU_SH_PYTHON (python3), GPU_SH_RESULTS (benchmarks/results), GPU_SH_WHEELS
# (.whl), GPU_SH_LM_BATCH (skips the probe), GPU_SH_FILL (0.85), GPU_SH_BUDGET_S (290),
# GPU_SH_MEMORY_MIB (the GPU's memory, read from nvidia-smi; the dry run's pretend size).
# Any failure prints one line, `gpu.sh: error: ...`, on stderr and exits 1, writing no results.

set -Eeuo pipefail
cd "$(dirname "$0")/.."

PY=${GPU_SH_PYTHON:-python3}
DRY=${GPU_SH_DRY_RUN:-0}
RESULTS=${GPU_SH_RESULTS:-benchmarks/results}
WHEELS=${GPU_SH_WHEELS:-.whl}
FILL=${GPU_SH_FILL:-0.85}
BUDGET_S=${GPU_SH_BUDGET_S:-290}
WORK=$(mktemp -d)
KEEP_WORK=0  # set when an error line names a log in $WORK

fail() { echo "gpu.sh: error: $*" >&2; exit 1; }
trap 'fail "line $LINENO: \`$BASH_COMMAND\` exited $?"' ERR
trap '((KEEP_WORK)) || rm -rf "$WORK"' EXIT
say() { echo "gpu.sh [${SECONDS}s] $*"; }
# A log's error: a traceback's last line, or absl's FATAL line rather than the help hint after it.
error_line() { { grep -i error "$1" || grep . "$1" || echo "no output in $1"; } | tail -n1; }

MESH=(--config.mesh.data=1 --config.mesh.fsdp=1 --config.mesh.tensor=1)  # one device
# The probe's batch fits even with XLA's attention, which materialises 24 layers of 16x2048x2048
# scores (23 GiB of temporaries per sequence in XLA:CPU's compiled step); cuDNN's fused
# attention, the default on a GPU in bf16 (scaling/precision.py), needs far less.
PROBE_BATCH=2
if [[ $DRY == 1 ]]; then
  export JAX_PLATFORMS=cpu
  MEMORY_MIB=${GPU_SH_MEMORY_MIB:-8192}
  LM=(--config=configs/lm.py:size=nano --config.seq_len=32 --config.model.vocab_size=256)
  DIT=(--config=configs/dit.py:size=tiny --config.model.image_size=8 --config.batch_size=16)
  MAX_BATCH=8 TIMED=(--steps=2 --warmup=1)
  say "dry run on CPU with tiny shapes, pretending the device has ${MEMORY_MIB} MiB"
else
  command -v nvidia-smi >/dev/null ||
    fail "nvidia-smi not found: run this on a host with an NVIDIA GPU (GPU_SH_DRY_RUN=1 checks the script on CPU)"
  # One GPU, the first visible: the mesh above is 1x1x1, so JAX must see one device.
  export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}
  export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES%%,*}
  smi=$(nvidia-smi -i "$CUDA_VISIBLE_DEVICES" --query-gpu=name,memory.total,driver_version \
        --format=csv,noheader,nounits 2>&1) || fail "nvidia-smi failed: $(head -n1 <<<"$smi")"
  IFS=, read -r gpu_name smi_mib driver <<<"$smi"
  MEMORY_MIB=${GPU_SH_MEMORY_MIB:-${smi_mib// /}}
  [[ $MEMORY_MIB =~ ^[0-9]+$ ]] || fail "nvidia-smi gave no memory size ('$smi'); set GPU_SH_MEMORY_MIB"
  say "GPU $CUDA_VISIBLE_DEVICES:$gpu_name, $MEMORY_MIB MiB, driver$driver"
  # XLA takes 75% of the memory by default; a batch that fills the device needs more.
  export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.95}
  LM=(--config=configs/lm.py:size=m300 --config.seq_len=2048 --config.model.vocab_size=32768)
  DIT=(--config=configs/dit.py:size=B/2 --config.model.image_size=32 --config.batch_size=256)
  MAX_BATCH=512 TIMED=(--steps=10 --warmup=2)
fi
LM+=(--config.dtype=bfloat16 "${MESH[@]}")
DIT+=(--config.model.channels=4 --config.model.num_classes=1000 --config.dtype=bfloat16 "${MESH[@]}")

# The Python: what the benchmark imports, and the device JAX computes on.
command -v "$PY" >/dev/null || fail "no '$PY' on PATH: set GPU_SH_PYTHON to a Python that has jax"
check_python() {
  "$PY" - 2>"$WORK/python.log" <<'EOF'
import importlib
import sys
needed = {'jax': 'jax', 'flax': 'flax', 'optax': 'optax', 'orbax.checkpoint': 'orbax-checkpoint',
          'ml_collections': 'ml-collections', 'absl': 'absl-py', 'numpy': 'numpy', 'yaml': 'PyYAML'}
missing = []
for module, package in needed.items():
  try:
    importlib.import_module(module)
  except ImportError:
    missing.append(package)
if missing:
  print('missing', *missing)
else:
  import flax, jax
  d = jax.devices()
  print('ok', d[0].platform, len(d), sys.executable,
        f'({d[0].device_kind}, jax {jax.__version__}, flax {flax.__version__})')
EOF
}
read -r status rest < <(check_python) || fail "'$PY' failed: $(error_line "$WORK/python.log")"
if [[ $status == missing ]]; then
  [[ " $rest " != *" jax "* ]] ||
    fail "'$PY' has no jax: install jax with its CUDA plugin (pip install 'jax[cuda13]', [cuda12] for a driver before 580) or set GPU_SH_PYTHON"
  if compgen -G "$WHEELS/*.whl" >/dev/null; then from=(--no-index --find-links "$WHEELS"); where=$WHEELS
  else from=(--retries 0 --timeout 15); where='the package registry'; fi
  say "installing $rest from $where"
  # shellcheck disable=SC2086  # $rest: one word per package
  "$PY" -m pip install -q --no-deps --no-compile --target "$WORK/site" "${from[@]}" $rest \
      >"$WORK/pip.log" 2>&1 ||
    fail "pip could not install $rest from $where ($(error_line "$WORK/pip.log")); put their wheels in $WHEELS (benchmarks/results/README.md)"
  export PYTHONPATH=$WORK/site${PYTHONPATH:+:$PYTHONPATH}
  read -r status rest < <(check_python) || fail "'$PY' failed: $(error_line "$WORK/python.log")"
  [[ $status == ok ]] || fail "'$PY' still lacks $rest after installing: put their wheels in $WHEELS"
fi
read -r platform n_devices python versions <<<"$rest"
want=$([[ $DRY == 1 ]] && echo cpu || echo gpu)
[[ $platform == "$want" ]] ||
  fail "JAX computes on $platform, not $want: install jax's CUDA plugin for '$PY' (pip install 'jax[cuda13]', [cuda12] for a driver before 580)"
[[ $n_devices == 1 ]] || fail "JAX sees $n_devices devices, not 1: set CUDA_VISIBLE_DEVICES to one GPU"
say "python $python $versions"

# bench NAME ARGS...: the JSON line in $WORK/NAME.json; returns 3 when the device ran out of memory.
bench() {
  local name=$1 left=$((BUDGET_S - SECONDS)) rc=0
  shift
  ((left >= 20)) || fail "$name: only ${left}s left of GPU_SH_BUDGET_S=${BUDGET_S}s"
  say "$name: python -m benchmarks.train_throughput --json $* (limit ${left}s)"
  timeout --kill-after=10 "$left" "$PY" -m benchmarks.train_throughput --json "$@" \
      >"$WORK/$name.out" 2>"$WORK/$name.log" || rc=$?
  if ((rc == 0)) && grep '^{' "$WORK/$name.out" | tail -n1 >"$WORK/$name.json" && [[ -s $WORK/$name.json ]]; then
    say "$name: done"
    return 0
  fi
  if ((rc != 0 && rc != 124 && rc != 137)) && grep -q -e RESOURCE_EXHAUSTED -e 'out of memory' "$WORK/$name.log"; then
    return 3
  fi
  # shellcheck disable=SC2034  # read by the EXIT trap
  KEEP_WORK=1
  ((rc != 0)) || fail "$name: no JSON line in its output ($WORK/$name.out)"
  ((rc != 124 && rc != 137)) ||
    fail "$name: still running after ${left}s; raise GPU_SH_BUDGET_S (log: $WORK/$name.log)"
  fail "$name: exit $rc: $(error_line "$WORK/$name.log") (log: $WORK/$name.log)"
}

if [[ -n ${GPU_SH_LM_BATCH:-} ]]; then
  batch=$GPU_SH_LM_BATCH
  say "lm: batch $batch from GPU_SH_LM_BATCH"
else
  bench lm-probe "${LM[@]}" --config.batch_size=$PROBE_BATCH --steps=2 --warmup=1 ||
    fail "lm-probe: out of memory at batch $PROBE_BATCH; set GPU_SH_LM_BATCH to a smaller batch"
  fit=$("$PY" - "$WORK/lm-probe.json" "$MEMORY_MIB" "$FILL" "$PROBE_BATCH" "$MAX_BATCH" 2>"$WORK/fit.log" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
memory_mib, fill, probe, most = int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
temp, peak = r['compiled_temp_bytes'], r['peak_memory_bytes']
if not temp:
  sys.exit('the probe reported no compiled_temp_bytes; set GPU_SH_LM_BATCH')
per_sequence, fixed = temp / probe, peak - temp
rows = int((fill * memory_mib * 2**20 - fixed) // per_sequence) // probe * probe
print(min(max(rows, probe), most), peak >> 20)
EOF
) || fail "lm: no batch from the probe: $(error_line "$WORK/fit.log")"
  read -r batch probe_mib <<<"$fit"
  say "lm: the probe at batch $PROBE_BATCH peaked at $probe_mib MiB; batch $batch fills $FILL of $MEMORY_MIB MiB (at most $MAX_BATCH)"
fi
bench lm "${LM[@]}" --config.batch_size="$batch" "${TIMED[@]}" || {
  batch=$((batch / 2 / PROBE_BATCH * PROBE_BATCH))
  ((batch >= PROBE_BATCH)) || fail "lm: out of memory; set GPU_SH_LM_BATCH"
  say "lm: out of memory; again at batch $batch"
  bench lm "${LM[@]}" --config.batch_size="$batch" "${TIMED[@]}" ||
    fail "lm: out of memory at batch $batch too; set GPU_SH_LM_BATCH"
}
bench dit --task=dit "${DIT[@]}" "${TIMED[@]}" || fail "dit: out of memory"

# Results are written only when both lines are in and read back whole.
summary=$("$PY" - "$WORK/lm.json" "$WORK/dit.json" 2>"$WORK/summary.log" <<'EOF'
import json, sys
for path in sys.argv[1:]:
  r = json.load(open(path))
  rate = (f'{r["images_per_s"]:,.0f} images/s' if 'images_per_s' in r else
          f'{r["tokens_per_s"]:,.0f} tokens/s')
  print(f'{r["task"]} {r["size"]} ({r["params"]:,} parameters) batch {r["batch_size"]}: {rate}, '
        f'MFU {r["mfu"]:.1%}, step {r["step_s_median"] * 1e3:.1f} ms, compile {r["compile_s"]:.0f} s, '
        f'peak {r["peak_memory_bytes"] / 2**30:.1f} GiB ({r["peak_memory_kind"]})')
EOF
) || fail "a benchmark's JSON line is incomplete: $(error_line "$WORK/summary.log")"
mkdir -p "$RESULTS"
out=$RESULTS/$(date -u +%Y-%m-%dT%H%M%SZ)-${HOSTNAME%%.*}.jsonl
cat "$WORK/lm.json" "$WORK/dit.json" >>"$out"
echo "$summary"
say "wrote $out"
